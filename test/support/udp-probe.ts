// A tiny UDP tool that system tests run as a child process (see node-runner.ts), usually inside a
// network namespace made by netns.ts. It talks JSON lines: one JSON object per stdout line, commands as
// JSON lines on stdin. Nothing here picks an address by itself: it sends only where the test tells it,
// and tests send only to loopback or to their own namespaces' addresses.
//
//   listen <port> [options]        bind, print {"event":"ready"}, then one {"event":"message"} per datagram.
//                                  Reads stdin commands: {"cmd":"send","address","port","text"} sends from
//                                  the same socket and answers {"event":"sent"} (or {"event":"send-failed"},
//                                  same text); {"cmd":"close"} exits.
//   send <addr> <port> <text> [options]   one datagram from an ephemeral port, print {"event":"sent"}, exit.
//
// Options:
//   --bind <addr>     local address to bind (default 0.0.0.0, which also receives broadcast and multicast)
//   --reuse           SO_REUSEADDR, so several sockets can share the port
//   --broadcast       SO_BROADCAST, needed to send to a broadcast address
//   --join <group>    join a multicast group (repeatable) on --iface
//   --iface <addr>    the local address of the card used for joining and for sending multicast
//                     (IP_MULTICAST_IF). Be explicit: without it the kernel picks by routing table.
//   --no-loop         IP_MULTICAST_LOOP off: our own multicast is not delivered back to this host
//   --ttl <n>         multicast TTL (default 1: never leaves the LAN)
import dgram from 'node:dgram';
import readline from 'node:readline';

interface Options {
  bind: string;
  reuse: boolean;
  broadcast: boolean;
  join: string[];
  iface?: string;
  loop: boolean;
  ttl: number;
}

function out(obj: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function parse(argv: string[]): { positional: string[]; options: Options } {
  const options: Options = { bind: '0.0.0.0', reuse: false, broadcast: false, join: [], loop: true, ttl: 1 };
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--bind') options.bind = value();
    else if (arg === '--reuse') options.reuse = true;
    else if (arg === '--broadcast') options.broadcast = true;
    else if (arg === '--join') options.join.push(value());
    else if (arg === '--iface') options.iface = value();
    else if (arg === '--no-loop') options.loop = false;
    else if (arg === '--ttl') options.ttl = Number(value());
    else if (arg.startsWith('--')) throw new Error(`unknown option ${arg}`);
    else positional.push(arg);
  }
  return { positional, options };
}

function open(port: number, o: Options): Promise<dgram.Socket> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: o.reuse });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, o.bind, () => {
      socket.off('error', reject);
      // Socket options that need a bound socket.
      socket.setBroadcast(o.broadcast);
      socket.setMulticastTTL(o.ttl);
      socket.setMulticastLoopback(o.loop);
      if (o.iface) socket.setMulticastInterface(o.iface);
      for (const group of o.join) socket.addMembership(group, o.iface);
      resolve(socket);
    });
  });
}

function send(socket: dgram.Socket, address: string, port: number, text: string): Promise<void> {
  return new Promise((resolve, reject) =>
    socket.send(Buffer.from(text), port, address, (err) => (err ? reject(err) : resolve())),
  );
}

async function main(): Promise<void> {
  const [mode, ...rest] = process.argv.slice(2);
  const { positional, options } = parse(rest);

  if (mode === 'send') {
    const [address, port, text] = positional;
    const socket = await open(0, options);
    await send(socket, address, Number(port), text);
    out({ event: 'sent', address, port: Number(port), text });
    socket.close();
    return;
  }

  if (mode === 'listen') {
    const socket = await open(Number(positional[0]), options);
    socket.on('message', (msg, rinfo) =>
      out({ event: 'message', text: msg.toString(), from: rinfo.address, fromPort: rinfo.port }),
    );
    socket.on('error', (err) => out({ event: 'error', message: err.message }));
    const bound = socket.address();
    out({ event: 'ready', address: bound.address, port: bound.port });

    // stdin closing (the test ended or died) also ends us, so a probe never outlives its test.
    const lines = readline.createInterface({ input: process.stdin });
    lines.on('close', () => process.exit(0));
    lines.on('line', (line) => {
      const cmd = JSON.parse(line) as { cmd: string; address?: string; port?: number; text?: string };
      if (cmd.cmd === 'close') process.exit(0);
      if (cmd.cmd === 'send') {
        send(socket, String(cmd.address), Number(cmd.port), String(cmd.text)).then(
          () => out({ event: 'sent', address: cmd.address, port: cmd.port, text: cmd.text }),
          (err: NodeJS.ErrnoException) =>
            out({ event: 'send-failed', text: cmd.text, code: err.code, message: err.message }),
        );
      }
    });
    return;
  }

  throw new Error(`usage: udp-probe (listen <port> | send <addr> <port> <text>) [options]; got ${mode}`);
}

main().catch((err: Error) => {
  process.stderr.write(`udp-probe: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
