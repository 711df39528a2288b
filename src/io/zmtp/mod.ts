/**
 * Our ZeroMQ transport: ZMTP 3.1 with the NULL and CURVE mechanisms on Deno's own TCP
 * sockets, wire-compatible with libzmq (DEALER and ROUTER). See `socket.ts` for the
 * sockets, `curve.ts` for CurveZMQ, `codec.ts` for the wire format.
 *
 * @example
 * ```ts
 * import { curveKeyPairZ85, Dealer, Router } from "./mod.ts";
 * const server = curveKeyPairZ85(), client = curveKeyPairZ85();
 * const router = new Router({ curveServer: true, curveSecretKey: server.secretKey });
 * const address = await router.bind("tcp://127.0.0.1:*");
 * const dealer = new Dealer({ curveServerKey: server.publicKey, curveSecretKey: client.secretKey });
 * dealer.connect(address);
 * await dealer.send([new Uint8Array([1])]);
 * await router.receive();
 * await dealer.close();
 * await router.close();
 * ```
 * @module
 */
export { curveKeyPair, curveKeyPairZ85, curvePublicKey } from "./box.ts";
export {
  Dealer,
  HostUnreachableError,
  type Peer,
  Router,
  routingKey,
  SocketClosedError,
  type SocketEvents,
  type SocketOptions,
} from "./socket.ts";
export {
  type Authorizer,
  type AuthRequest,
  HandshakeError,
  type HandshakeFailure,
} from "./mechanism.ts";
