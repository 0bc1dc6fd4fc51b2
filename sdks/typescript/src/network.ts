/**
 * `sandbox.network`: what an `egress` sandbox may reach (docs/networking.md), changeable while it runs.
 */

import type { CoveClient } from "./transport.js";
import { type NetworkPolicy, networkPolicyFrom } from "./types.js";

/** Rules for `network.update`: CIDRs or host names such as `pypi.org` and `*.github.com`. */
export interface NetworkRules {
  allow?: string[];
  deny?: string[];
}

export class Network {
  /** @internal */
  constructor(
    private readonly client: CoveClient,
    private readonly sandboxId: string,
  ) {}

  /**
   * Replace the sandbox's allow and deny rules, in force at once (open connections included); with `allow`
   * given, the sandbox reaches only what it names. Resolves to the policy now in force.
   *
   * @example
   * await sandbox.network.update({ allow: ["pypi.org", "files.pythonhosted.org"] });
   */
  async update(rules: NetworkRules = {}): Promise<NetworkPolicy> {
    const json = { mode: "egress", allow: rules.allow ?? [], deny: rules.deny ?? [] };
    const info = await this.client.request<Record<string, unknown>>("PUT", `/v1/sandboxes/${this.sandboxId}/network`, {
      json,
    });
    return networkPolicyFrom(info.network);
  }
}
