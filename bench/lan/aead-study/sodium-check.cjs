const s = require('libsodium-wrappers');
s.ready.then(() => {
  console.log(
    'libsodium',
    s.SODIUM_VERSION_STRING,
    'aes256gcm available:',
    s.crypto_aead_aes256gcm_is_available ? s.crypto_aead_aes256gcm_is_available() : 'no such function',
  );
  console.log('has crypto_aead_aes256gcm_encrypt:', typeof s.crypto_aead_aes256gcm_encrypt);
});
