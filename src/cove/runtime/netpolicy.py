"""What a sandbox may reach: the network policy, its rules, and what they compile to.

``{"mode": "egress", "allow": [...], "deny": [...]}``; each rule is an IPv4 CIDR (a bare address is a /32) or a
host name (``pypi.org``, or ``*.github.com`` for github.com's subdomains at any depth, not github.com itself).

What an ``egress`` sandbox reaches, in order (docs/networking.md):
1. never another sandbox, nor the host's loopback;
2. nothing that a ``deny`` rule names (deny wins over allow);
3. the host's own addresses only when an ``allow`` rule names that exact address (a /32);
4. a never-reached range (``BLOCKED``: private, shared, link-local, loopback, multicast…) only when an ``allow``
   CIDR lies inside it — ``0.0.0.0/0`` does not open 10.0.0.0/8, ``10.1.2.0/24`` opens exactly that;
5. the rest (the public internet): everything without ``allow``; with ``allow``, only what it names.
A host-name rule reaches the addresses Cove's DNS forwarder answered for that name, for a while (``runtime.dns``);
such an address never opens a never-reached range (a name that resolves to 10.0.0.5 is DNS rebinding, not a rule).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["none", "egress", "host"]
MODES: tuple[Mode, ...] = ("none", "egress", "host")
MAX_RULES = 256

# Destinations an egress sandbox never reaches unless an allow rule inside one of them names it.
BLOCKED = tuple(
    ipaddress.IPv4Network(cidr)
    for cidr in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # RFC 1918
        "100.64.0.0/10",  # shared address space (carrier-grade NAT, tailnets)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local: cloud metadata services live here
        "172.16.0.0/12",  # RFC 1918
        "192.168.0.0/16",  # RFC 1918
        "224.0.0.0/3",  # multicast, reserved and broadcast
    )
)
EVERYWHERE = ipaddress.IPv4Network("0.0.0.0/0")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


class PolicyError(ValueError):
    """A policy that cannot be applied; the message names the offending rule."""


@dataclass(frozen=True)
class CidrRule:
    network: ipaddress.IPv4Network

    def __str__(self) -> str:
        return str(self.network.network_address) if self.network.prefixlen == 32 else str(self.network)


@dataclass(frozen=True)
class NameRule:
    """``name`` (lower case, no trailing dot); ``wildcard``: the rule was ``*.name`` and matches its subdomains."""

    name: str
    wildcard: bool = False

    def matches(self, query: str) -> bool:
        query = query.lower().rstrip(".")
        if self.wildcard:
            return query.endswith("." + self.name)
        return query == self.name

    def __str__(self) -> str:
        return f"*.{self.name}" if self.wildcard else self.name


Rule = CidrRule | NameRule


def parse_rule(text: object, where: str) -> Rule:
    """One rule; ``where`` (``allow[2]``) goes into the error so the user sees which rule is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise PolicyError(f"{where}: a rule is a CIDR or a host name, not {text!r}")
    value = text.strip()
    if any(ch in value for ch in ":/") or value.replace(".", "").isdigit():
        return CidrRule(_cidr(value, where))
    return _name_rule(value, where)


def _cidr(value: str, where: str) -> ipaddress.IPv4Network:
    try:
        network = ipaddress.ip_network(value)
    except ValueError as exc:
        try:
            loose = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise PolicyError(f"{where}: {value!r} is not a valid CIDR ({exc})") from exc
        raise PolicyError(f"{where}: {value!r} has host bits set; did you mean {loose}?") from exc
    if isinstance(network, ipaddress.IPv6Network):
        raise PolicyError(f"{where}: {value!r} is IPv6; sandboxes have no IPv6 network (docs/networking.md)")
    return network


def _name_rule(value: str, where: str) -> NameRule:
    name = value.lower().rstrip(".")
    wildcard = name.startswith("*.")
    if wildcard:
        name = name[2:]
    if not name.isascii():
        raise PolicyError(f"{where}: {value!r}: write international names in their ASCII (xn--) form")
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels) or "*" in name:
        raise PolicyError(f"{where}: {value!r} is neither a CIDR nor a host name (e.g. pypi.org or *.github.com)")
    if labels[-1].isdigit():
        raise PolicyError(f"{where}: {value!r} is neither a valid IPv4 address nor a host name")
    return NameRule(name, wildcard)


@dataclass(frozen=True)
class NetworkPolicy:
    """A sandbox's network: ``none`` (loopback only), ``egress`` (NATed, under ``allow``/``deny``) or ``host``."""

    mode: Mode = "none"
    allow: tuple[Rule, ...] = ()
    deny: tuple[Rule, ...] = ()

    @classmethod
    def parse(cls, value: str | Mapping[str, Any]) -> NetworkPolicy:
        """``"egress"``, or ``{"mode": "egress", "allow": [...], "deny": [...]}``; PolicyError otherwise."""
        if isinstance(value, str):
            return cls(_mode(value))
        if not isinstance(value, Mapping):
            raise PolicyError(f"network: expected a mode or an object, not {type(value).__name__}")
        unknown = set(value) - {"mode", "allow", "deny"}
        if unknown:
            raise PolicyError(f"network: unknown field(s) {', '.join(sorted(unknown))}")
        mode = _mode(value.get("mode", "egress"))
        allow = _rules(value.get("allow") or [], "allow")
        deny = _rules(value.get("deny") or [], "deny")
        if mode != "egress" and (allow or deny):
            raise PolicyError(f"network: allow and deny rules apply to mode 'egress' only, not {mode!r}")
        return cls(mode, allow, deny)

    def to_json(self) -> str | dict[str, Any]:
        if not self.allow and not self.deny:
            return self.mode
        return {"mode": self.mode, "allow": [str(r) for r in self.allow], "deny": [str(r) for r in self.deny]}

    @property
    def narrowed(self) -> bool:
        """With allow rules, egress reaches only what they name."""
        return bool(self.allow)

    def allows_name(self, name: str) -> bool:
        """True when addresses answered for ``name`` are to be pinned as reachable (an allow rule names it)."""
        return any(isinstance(r, NameRule) and r.matches(name) for r in self.allow) and not self.denies_name(name)

    def denies_name(self, name: str) -> bool:
        return any(isinstance(r, NameRule) and r.matches(name) for r in self.deny)

    def compile(self) -> CompiledPolicy:
        """The address sets the firewall holds for this policy (names excepted: those are pinned at run time)."""
        allow = [r.network for r in self.allow if isinstance(r, CidrRule)]
        deny = [r.network for r in self.deny if isinstance(r, CidrRule)]
        opened = [net for net in allow if any(net.subnet_of(blocked) for blocked in BLOCKED)]
        return CompiledPolicy(
            deny=_collapse(deny),
            opened=_collapse(opened),
            host=tuple(sorted({net.network_address for net in allow if net.prefixlen == 32})),
            allow=_collapse(allow) if self.narrowed else (EVERYWHERE,),
        )


@dataclass(frozen=True)
class CompiledPolicy:
    """``deny``: never; ``opened``: allow CIDRs inside never-reached ranges; ``host``: host addresses the sandbox
    may reach (exact allow addresses); ``allow``: the public destinations (everything when not narrowed)."""

    deny: tuple[ipaddress.IPv4Network, ...] = ()
    opened: tuple[ipaddress.IPv4Network, ...] = ()
    host: tuple[ipaddress.IPv4Address, ...] = ()
    allow: tuple[ipaddress.IPv4Network, ...] = field(default=(EVERYWHERE,))


def _mode(value: object) -> Mode:
    for mode in MODES:
        if value == mode:
            return mode
    raise PolicyError(f"network: mode must be one of {', '.join(MODES)}, not {value!r}")


def _rules(values: object, kind: str) -> tuple[Rule, ...]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise PolicyError(f"{kind}: expected a list of rules, not {type(values).__name__}")
    if len(values) > MAX_RULES:
        raise PolicyError(f"{kind}: at most {MAX_RULES} rules, not {len(values)}")
    return tuple(parse_rule(value, f"{kind}[{i}]") for i, value in enumerate(values))


def _collapse(networks: Iterable[ipaddress.IPv4Network]) -> tuple[ipaddress.IPv4Network, ...]:
    return tuple(ipaddress.collapse_addresses(networks))
