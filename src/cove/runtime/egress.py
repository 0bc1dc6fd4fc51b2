"""One server's ``egress`` network, opened and closed as a whole: its slot of the host's address space, the kernel
side (veths and nftables, ``runtime.network``) and the DNS forwarder (``runtime.dns``).

A host where it cannot be had (no libnftables, no permission, every slot taken) still runs Cove: its sandboxes get
``none`` or ``host`` only, and a create asking for ``egress`` is told why.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from cove.runtime import network_slot
from cove.runtime.dns import DnsForwarder, host_resolvers
from cove.runtime.network import LiveSandbox, NetworkError, Networks, resolv_conf
from cove.runtime.network_slot import NetworkSlot, SlotUnavailable

log = logging.getLogger("cove.network")


@dataclass
class Egress:
    slot: NetworkSlot
    networks: Networks
    dns: DnsForwarder | None = None
    _sweep: asyncio.Task[None] | None = None
    _closing: bool = False

    @property
    def resolv_conf(self) -> str:
        return resolv_conf(self.networks.gateway)

    async def start(self, live: list[LiveSandbox], upstreams: tuple[tuple[str, int], ...]) -> bool:
        """Set the host up for the sandboxes alive, then serve their DNS; False (logged) when the host cannot."""
        try:
            await self.networks.start(live)
            self.dns = DnsForwarder(self.networks, self.networks.gateway, upstreams or host_resolvers())
            await self.dns.start()
        except (NetworkError, OSError) as exc:
            log.error("no 'egress' network on this host (sandboxes get 'none' or 'host' only): %s", exc)
            await self.close()
            return False
        log.info("egress network: subnet %s, nftables table %s", self.slot.subnet, self.networks.table)
        self._sweep = asyncio.create_task(self._remove_abandoned())
        return True

    async def close(self) -> None:
        """Stop serving. The kernel state stays with the sandboxes still running, which outlive the server; with
        none left, it goes (a restart puts it back)."""
        self._closing = True
        if self._sweep is not None:
            await self._sweep
        if self.dns is not None:
            await self.dns.close()
        if not self.networks.attached():
            await self.networks.teardown()
        await self.networks.close()
        self.slot.release()

    async def _remove_abandoned(self) -> None:
        """Remove the veths and table of every slot no server holds and no home's sandbox needs, one slot at a
        time and in the background (each takes an nftables transaction); a closing server stops after the slot
        at hand."""
        for index in range(network_slot.SLOTS):
            if self._closing:
                return
            slot = await asyncio.to_thread(network_slot.abandoned, index, self.slot)
            if slot is None:
                continue
            networks = Networks(slot.subnet, table=slot.table, prefix=slot.prefix)
            try:
                await networks.teardown()
                await networks.close()
                log.info("removed the network of abandoned slot %s", slot.table)
            except (NetworkError, OSError) as exc:
                log.warning("could not remove the abandoned network slot %s: %s", slot.table, exc)
            finally:
                slot.release()


def open_egress(home: Path, subnet: str | None) -> Egress | None:
    try:
        slot = network_slot.claim(home, subnet)
    except (SlotUnavailable, OSError) as exc:
        log.error("no 'egress' network on this host (sandboxes get 'none' or 'host' only): %s", exc)
        return None
    try:
        networks = Networks(slot.subnet, table=slot.table, prefix=slot.prefix)
    except (NetworkError, ValueError) as exc:
        slot.release()
        log.error("no 'egress' network: %s", exc)
        return None
    return Egress(slot, networks)
