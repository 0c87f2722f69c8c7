/**
 * Whether a UDP port on 127.0.0.1 is free: nothing listens there, so a
 * WireGuard peer pointed at it (by an agent that stopped while relaying it)
 * reaches no one. A peer pointed at a local port where something does listen
 * (a UDP-over-TCP tunnel, say) is the user's and left alone.
 */
import { createSocket } from "node:dgram";

export function freeLocalPort(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket("udp4");
    socket.once("error", () => {
      socket.close();
      resolve(false);
    });
    socket.bind({ address: host, port, exclusive: true }, () => {
      socket.close();
      resolve(true);
    });
  });
}
