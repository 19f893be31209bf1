/**
 * Works around nodejs/undici#5360 in undici 7 (fixed in undici 8, which needs Node >= 22.19):
 * when a response body is paused by backpressure and the server then closes the connection (an
 * HTTP/1.0 server, or `Connection: close`), undici's socket `end` handler asserts that its
 * parser is not paused and the whole process dies with an uncatchable AssertionError.
 *
 * The guard watches every socket undici connects (the `undici:client:connected` diagnostics
 * channel, which covers direct, proxied and tunnelled connections alike) and holds back a
 * socket's `end` event while its parser is paused, re-emitting it once the consumer has read the
 * body and the parser resumed. Nothing is lost: `end` only fires after every byte was read.
 */
import { subscribe } from "node:diagnostics_channel";
import type { Socket } from "node:net";

const RECHECK_MS = 5;

interface PausableParser {
  paused: boolean;
}

let installed = false;

/** Installs the guard once; `kParser` is undici's symbol for a socket's HTTP/1 parser. */
export function installFinGuard(kParser: symbol): void {
  if (installed) return;
  installed = true;
  const parserOf = (socket: Socket) =>
    (socket as unknown as Record<symbol, PausableParser | null | undefined>)[kParser];
  subscribe("undici:client:connected", (message) => {
    const socket = (message as { socket?: Socket }).socket;
    if (!socket) return;
    const emit = socket.emit;
    socket.emit = function (this: Socket, event: string | symbol, ...args: unknown[]): boolean {
      if (event !== "end" || !parserOf(this)?.paused)
        return Reflect.apply(emit, this, [event, ...args]);
      const later = () => {
        const parser = parserOf(this);
        if (this.destroyed || !parser) return; // undici already finished with this socket
        if (parser.paused) setTimeout(later, RECHECK_MS);
        else Reflect.apply(emit, this, [event, ...args]);
      };
      setTimeout(later, RECHECK_MS);
      return true;
    } as Socket["emit"];
  });
}
