/**
 * Which process opened a loopback TCP connection, without any help from that process: the connection's
 * client socket is found in /proc/net/tcp by its two ports, and its inode among the open files of the
 * candidate processes (/proc/<pid>/fd, readable by root). Rule: a lookup is made while the connection is
 * open (when a request arrives on it); the answer for an inode is kept, since an inode names one socket for
 * as long as it lives.
 */

/** The inode of the IPv4 socket whose local port is `localPort` and remote port `remotePort`, if open. */
export function socketInode(localPort: number, remotePort: number): string | undefined {
  const want = `:${hex4(localPort)}`;
  const peer = `:${hex4(remotePort)}`;
  let table: string;
  try {
    table = Deno.readTextFileSync("/proc/net/tcp");
  } catch {
    return undefined;
  }
  for (const line of table.split("\n")) {
    const f = line.trim().split(/\s+/);
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
    if (f.length < 10 || !f[1]!.endsWith(want) || !f[2]!.endsWith(peer)) continue;
    if (f[9] !== "0") return f[9];
  }
  return undefined;
}

function hex4(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, "0");
}

/** Finds which of a changing set of processes holds a socket. */
export class SocketOwners {
  readonly #candidates: () => readonly number[];
  readonly #known = new Map<string, number>();

  /** `candidates` lists the pids that may own a connection (read on every lookup). */
  constructor(candidates: () => readonly number[]) {
    this.#candidates = candidates;
  }

  /** The pid among the candidates that holds the client end of `clientPort` -> `serverPort`, if any. */
  owner(clientPort: number, serverPort: number): number | undefined {
    const inode = socketInode(clientPort, serverPort);
    if (inode === undefined) return undefined;
    const known = this.#known.get(inode);
    if (known !== undefined) return known;
    const link = `socket:[${inode}]`;
    let found: number | undefined;
    for (const pid of this.#candidates()) {
      try {
        for (const fd of Deno.readDirSync(`/proc/${pid}/fd`)) {
          try {
            if (Deno.readLinkSync(`/proc/${pid}/fd/${fd.name}`) === link) found = pid;
          } catch { /* closed meanwhile */ }
          if (found !== undefined) break;
        }
      } catch { /* the process ended */ }
      if (found !== undefined) break;
    }
    // Inodes are reused only after the socket closed; keep the table small all the same.
    if (this.#known.size > 4096) this.#known.clear();
    if (found !== undefined) this.#known.set(inode, found);
    return found;
  }
}
