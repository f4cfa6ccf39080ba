/*
 * payconnect.h - the payconnect hook library: how register software hands an order to the payconnect
 * plugin running beside it, and learns the payment result.
 *
 * The library talks to the plugin's native-hook adapter over loopback TCP (one short JSON-lines
 * connection per call; see docs/adapters/native-hook.md for the wire format). Every connection starts
 * with a token that only the plugin's data folder holds (<dataDir>/native-hook.token, written by the
 * plugin), so another program on the machine or the LAN cannot submit orders or read results.
 *
 * Calling convention and linking
 *   Every function is __cdecl on Windows (PC_CALL) and exported undecorated from payconnect-x64.dll
 *   and payconnect-x86.dll (PC_API): a 32-bit register loads payconnect-x86.dll, a 64-bit one
 *   payconnect-x64.dll; on Linux, libpayconnect.so. Strings are UTF-8, NUL-terminated.
 *
 * Buffers
 *   The caller owns every buffer. A function that fills one takes (buf, len, needed): on PC_OK, *needed
 *   is the length written without the NUL; on PC_BUFFER_TOO_SMALL nothing is consumed, buf holds "" (when
 *   len > 0) and *needed is the size to allocate, NUL included: call again with a buffer that large.
 *   `needed` may be NULL. PC_RESULT_BUFFER_SIZE is enough for every result this version sends.
 *
 * Threads
 *   A handle may be shared by any number of threads: each call has its own connection, and the handle's
 *   state is guarded by a mutex. pc_submit_order returns as soon as the plugin has journaled the order
 *   (it never waits for the payment). pc_wait_result blocks ONLY the calling thread, for at most
 *   timeout_ms (plus connectTimeoutMs to reach the plugin and about one second for its answer):
 *   register software calls it from a worker thread, never from its UI thread, or polls with
 *   timeout_ms = 0.
 *
 * Timeouts
 *   Every call is bounded: connecting by "connectTimeoutMs", submit and cancel by "callTimeoutMs", a
 *   wait by its timeout_ms. A call that runs out of time returns PC_TIMEOUT; nothing is half done on
 *   the plugin's side that a repeat would double: submitting the same order id again is answered with
 *   the same order, and a result is kept until it is acknowledged.
 *
 * Results: exactly once per final state
 *   An order's result is one JSON object (the same document file-drop writes and http-hook posts):
 *     {"orderId":"A-1","registerId":"R1","status":"paid","amount":{"value":1250,"currency":"CNY"},
 *      "paymentId":"...","method":"wallet_code","decidedAt":"...","signature":"...",
 *      "delivery":"A-1:paid"}
 *   status is "paid", "canceled" or "failed"; paid and canceled never change again, while a failed
 *   order may still be paid later (the customer tries another code), so one order can yield "failed"
 *   and then "paid". Amounts are integers in minor units (1250 = 12.50 CNY).
 *   The plugin keeps each result on disk until the library acknowledges it. pc_wait_result copies the
 *   result into the caller's buffer and then acknowledges it, so the next wait for the order does not
 *   return it again; a result that did not fit the buffer is not acknowledged and is returned by the
 *   next wait. Each result is returned once per handle. If the register (or its PC) stops between the
 *   copy and the acknowledgement, the next process may see that result once more, with the same
 *   "delivery" id: treat a delivery id you have already booked as done.
 *
 * Errors
 *   Every function returns a pc_status. pc_last_error gives a sentence for the calling thread's last
 *   failed call on that handle, naming what went wrong and what to do.
 */
#ifndef PAYCONNECT_H
#define PAYCONNECT_H

#include <stddef.h>

#ifdef _WIN32
#define PC_CALL __cdecl
#ifdef PC_BUILDING_DLL
#define PC_API __declspec(dllexport)
#else
#define PC_API __declspec(dllimport)
#endif
#else
#define PC_CALL
#define PC_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** The library's version, also returned by pc_version(). */
#define PC_VERSION_STRING "1.0.0"

/** Enough for every result document this version sends (results are usually under 1 KiB). */
#define PC_RESULT_BUFFER_SIZE 4096

/** The plugin's default native-hook address, when the config names none. */
#define PC_DEFAULT_ADDRESS "127.0.0.1:47812"

typedef enum pc_status {
  PC_OK = 0,
  /** The plugin did not answer in time, or no result arrived within timeout_ms. Safe to call again. */
  PC_TIMEOUT = 1,
  /** The buffer is too small; *needed says how large it must be (NUL included). Nothing was consumed. */
  PC_BUFFER_TOO_SMALL = 2,
  /** Nothing listens at the configured address: the plugin is not running, or runs another manifest. */
  PC_NOT_RUNNING = 3,
  /** The token file is missing or unreadable, or the plugin refused the token (it was regenerated). */
  PC_BAD_TOKEN = 4,
  /** An argument is wrong: a NULL handle, config or order that is not valid JSON, a bad order id. */
  PC_BAD_INPUT = 5,
  /** The plugin refused the order (amount, currency, field): pc_last_error names the field. */
  PC_REJECTED = 6,
  /** The plugin answered something this library does not understand (a version mismatch?). */
  PC_PROTOCOL = 7,
  /** pc_wait_result / pc_cancel: the plugin never took an order with that id through this hook. */
  PC_UNKNOWN_ORDER = 8,
  /** pc_cancel: the order is already paid, or its payment can no longer be stopped: it stands. */
  PC_ORDER_STANDS = 9,
  /** pc_close: other threads are still inside calls on this handle; close again when they returned. */
  PC_BUSY = 10,
  /** Out of memory, or the socket layer could not be started. */
  PC_SYSTEM = 11
} pc_status;

typedef struct pc_handle pc_handle;

/**
 * Opens a handle. config_json is a JSON object, every field optional except a way to the token:
 *   "address"          "127.0.0.1:PORT" of the plugin's native-hook adapter (default PC_DEFAULT_ADDRESS;
 *                      only loopback addresses are accepted)
 *   "tokenFile"        path of the token file, e.g. "C:\\ProgramData\\payconnect\\native-hook.token"
 *   "dataDir"          or the plugin's data folder: the token file is <dataDir>/native-hook.token
 *   "connectTimeoutMs" default 2000; "callTimeoutMs" (submit, cancel) default 10000
 * Nothing is connected yet: a plugin that starts later is found by the first call. The token file is
 * read on every call, so a plugin reinstalled with a new token is picked up without reopening.
 * On success *out is the handle; on failure *out is NULL and the status says why (no pc_last_error:
 * there is no handle; a config error message can be had from pc_open_error).
 */
PC_API pc_status PC_CALL pc_open(const char *config_json, pc_handle **out);

/** Why the last pc_open of the calling thread failed (same buffer rules as every other). */
PC_API pc_status PC_CALL pc_open_error(char *buf, size_t len, size_t *needed);

/**
 * Hands one order to the plugin; returns PC_OK once the plugin has journaled it (it is then offered to
 * the mobile POS units and paid there). order_json is the order as the plugin's HTTP hook takes it:
 *   {"orderId":"A-1","amount":"12.50"}   or   {"orderId":"A-1","amount":{"value":1250,"currency":"CNY"}}
 * with optional "currency", "items" [{name, quantity?, amount?}] and "dispatch". A bare number as the
 * amount is refused (it cannot say whether it counts yuan or fen). Submitting the same orderId again
 * is answered PC_OK with the order already taken: never a second payment.
 */
PC_API pc_status PC_CALL pc_submit_order(pc_handle *h, const char *order_json);

/**
 * Waits up to timeout_ms (0: just look) for the next result of order_id that this handle has not
 * returned yet, and copies it, NUL-terminated, into buf. PC_TIMEOUT: no new result yet (call again);
 * PC_BUFFER_TOO_SMALL: *needed is the size to allocate, and the same result is returned next time.
 * Blocks only the calling thread: call it from a worker thread.
 */
PC_API pc_status PC_CALL pc_wait_result(pc_handle *h, const char *order_id, int timeout_ms, char *buf,
                                        size_t len, size_t *needed);

/**
 * Takes an order back (the customer left, the sale was voided): PC_OK when the plugin canceled it (a
 * "canceled" result follows through pc_wait_result), PC_ORDER_STANDS when it is already paid or being
 * paid past the point of return, PC_UNKNOWN_ORDER when the plugin never had it.
 */
PC_API pc_status PC_CALL pc_cancel(pc_handle *h, const char *order_id);

/** The message of the calling thread's last failed call on h ("" when there was none). */
PC_API pc_status PC_CALL pc_last_error(pc_handle *h, char *buf, size_t len, size_t *needed);

/** The library's version, e.g. "1.0.0" (a static string: do not free it). */
PC_API const char *PC_CALL pc_version(void);

/**
 * Closes the handle and frees it. Returns PC_BUSY (and closes nothing) while other threads are still in
 * calls on it: every call returns within its timeout, so close again after they have.
 */
PC_API pc_status PC_CALL pc_close(pc_handle *h);

#ifdef __cplusplus
}
#endif

#endif /* PAYCONNECT_H */
