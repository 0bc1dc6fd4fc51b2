/**
 * Published ports of a sandbox (`src/cove/api/routes/ports.py`): a port an app listens on inside the sandbox,
 * reachable through Cove at a preview URL — in every network mode, `"none"` included.
 */

import type { CoveClient } from "./transport.js";
import { type PortInfo, portInfoFrom } from "./types.js";

/** Options of `ports.expose`. */
export interface ExposeOptions {
  /** Anyone who can reach the server may open it (default `false`: only with a token). */
  public?: boolean;
  /** Seconds until the token it gives expires (default a day). */
  ttlS?: number;
}

/** The sandbox's published ports: `sandbox.ports`. */
export class Ports {
  private readonly path: string;

  /** @internal */
  constructor(
    private readonly client: CoveClient,
    sandboxId: string,
  ) {
    this.path = `/v1/sandboxes/${sandboxId}/ports`;
  }

  /**
   * Publish `port` at `url`. A private preview (the default) opens only with a token: `token` (a scoped token
   * with the `preview` scope for this sandbox; any other such token too) in the `X-Cove-Preview-Token` header,
   * or `?token=` once in a browser (a cookie then keeps it open). Exposing a port again only changes `public`;
   * its URL stays, and its token while it is live. Nothing needs to listen on the port yet. Takes an API key.
   *
   * @example
   * const preview = await sandbox.ports.expose(8000, { public: false });
   * await fetch(preview.url, { headers: { "X-Cove-Preview-Token": preview.token } });
   */
  async expose(port: number, options: ExposeOptions = {}): Promise<PortInfo> {
    const body = { port, public: options.public ?? false, ...(options.ttlS === undefined ? {} : { ttl_s: options.ttlS }) };
    return portInfoFrom(await this.client.request("POST", this.path, { json: body }));
  }

  /** The sandbox's exposed ports, lowest first. */
  async list(): Promise<PortInfo[]> {
    const reply = await this.client.request<{ ports: Record<string, unknown>[] }>("GET", this.path);
    return reply.ports.map(portInfoFrom);
  }

  /** Unpublish `port`: its preview answers 404 from now on (`PortNotFound` if it was not exposed), and its token is revoked. */
  async close(port: number): Promise<PortInfo> {
    return portInfoFrom(await this.client.request("DELETE", `${this.path}/${port}`));
  }
}
