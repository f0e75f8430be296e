"""Fair turns for photo and video jobs: who a visitor is, how many jobs each may have, whose turn it is.

Gradio's queue takes every job in arrival order and bounds how many wait (``max_size``); it admits
up to ``concurrency + queue_size`` of them into their handlers at once. There each job first passes
``Admission.admit``: a visitor -- a Gradio session *and* a client address, each counted on its
own -- may have ``visitor_jobs`` jobs (default 2: one running, one waiting); another one is refused
at once with one sentence, so a single visitor cannot fill the queue. Admitted jobs then wait for
one of ``concurrency`` slots in the order they came (``wait_turn``): every other visitor's job
waits behind at most one of the first visitor's.

The client address is the peer's, or -- when the peer is a trusted proxy
(``SEGMENTATION_TRUSTED_PROXIES``, ``*`` on a Hugging Face Space, where every request comes
through its proxy) -- the first address of ``X-Forwarded-For``. See docs/limits-and-faults.md, "Bad input, limits
and faults", for why the first address and what it costs.

Slots are plain counters under a lock, polled from the event loop, so a job computed outside
Gradio's loop (the examples' warm-up) takes its turn like any other.
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from collections import Counter, deque
from dataclasses import dataclass
from typing import Callable, Mapping

from segmentation.errors import SegmentationError

from .limits import ANY_PEER

POLL_S = 0.1  # how often a waiting job looks whether its turn has come


class Refused(SegmentationError):
    """A visitor already has as many jobs as allowed; the sentence says so."""


class Abandoned(SegmentationError):
    """The visitor went away while the job waited for its turn."""


@dataclass(frozen=True)
class Visitor:
    """Who sent a job: a Gradio session and a client address (either may be unknown)."""

    session: str | None = None
    address: str | None = None

    def keys(self) -> tuple[str, ...]:
        return tuple(k for k in (self.session and f"session {self.session}",
                                 self.address and f"address {self.address}") if k)


def trusted(peer: str | None, proxies: tuple[str, ...]) -> bool:
    """Whether the peer ``peer`` is one of the trusted proxies (``*``: any peer)."""
    if not proxies or peer is None:
        return False
    if proxies == (ANY_PEER,):
        return True
    try:
        ip = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(n) for n in proxies)


def client_address(peer: str | None, headers: Mapping[str, str], proxies: tuple[str, ...]) -> str | None:
    """The visitor's address: the first valid address of ``X-Forwarded-For`` when the peer is a
    trusted proxy, else the peer itself (a header from anyone else is ignored: anyone can send one)."""
    if trusted(peer, proxies):
        forwarded = next((v for k, v in headers.items() if k.lower() == "x-forwarded-for"), "")
        first = forwarded.split(",")[0].strip()
        try:
            return str(ipaddress.ip_address(first))
        except ValueError:
            pass  # no usable header: the proxy itself is all we know
    return peer


def visitor_of(request, proxies: tuple[str, ...]) -> Visitor | None:
    """The visitor behind a ``gr.Request`` (None outside a request: the server's own jobs)."""
    if request is None:
        return None
    try:
        client = request.client
        peer = getattr(client, "host", None) if client else None
        headers = dict(request.headers or {})
    except AttributeError:
        peer, headers = None, {}
    return Visitor(getattr(request, "session_hash", None), client_address(peer, headers, proxies))


class Ticket:
    """One admitted job: waiting, then running, then released (``release`` is idempotent)."""

    def __init__(self, admission: "Admission", keys: tuple[str, ...]):
        self._admission, self.keys = admission, keys
        self.running = False
        self.released = False

    def release(self, *_ignored) -> None:
        """Give back the slot (if running) and the visitor's count; usable as a done callback."""
        self._admission._release(self)


class Admission:
    """Per-visitor job counts and ``slots`` job slots, taken in arrival order."""

    def __init__(self, slots: int, visitor_jobs: int):
        self.slots, self.visitor_jobs = slots, visitor_jobs
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._waiting: deque[Ticket] = deque()
        self._running: set[Ticket] = set()

    def admit(self, visitor: Visitor | None) -> Ticket:
        """A ticket for one more job of ``visitor``, or ``Refused`` when they have enough already."""
        keys = visitor.keys() if visitor is not None else ()
        with self._lock:
            busy = next((k for k in keys if self._counts[k] >= self.visitor_jobs), None)
            if busy is not None:
                raise Refused(self._refusal(busy))
            self._counts.update(keys)
            ticket = Ticket(self, keys)
            self._waiting.append(ticket)
            return ticket

    def _refusal(self, key: str) -> str:
        mine = [t for t in self._all_tickets() if key in t.keys]
        running = sum(t.running for t in mine)
        waiting = len(mine) - running
        if running == 1 and waiting == 1:
            have = "a job running and one waiting"
        elif running and waiting:
            have = f"{running} jobs running and {waiting} waiting"
        else:
            have = f"{len(mine)} jobs {'running' if running else 'waiting'}"
        who = "You already have" if key.startswith("session") else "Your network address already has"
        return (f"{who} {have} (the limit per visitor is {self.visitor_jobs}); wait until one finishes "
                "(or press Stop), then try again.")

    def _all_tickets(self) -> list[Ticket]:
        return list(self._waiting) + list(self._running)

    async def wait_turn(self, ticket: Ticket, gone: Callable[[], bool] = lambda: False,
                        report: Callable[[int], None] | None = None) -> None:
        """Wait until ``ticket`` holds a slot (arrival order). ``report(jobs_ahead)`` is called when the
        number of jobs ahead changes; ``gone()`` true (the visitor left) ends the wait with ``Abandoned``.
        Cancelling the wait (Stop) releases the ticket."""
        shown = None
        try:
            while True:
                with self._lock:
                    if ticket.released:
                        raise Abandoned("The job was withdrawn before its turn.")
                    if len(self._running) < self.slots and self._waiting[0] is ticket:
                        self._waiting.popleft()
                        ticket.running = True
                        self._running.add(ticket)
                        return
                    ahead = len(self._running) + self._waiting.index(ticket)
                if gone():
                    raise Abandoned("The visitor left before the job's turn.")
                if report is not None and ahead != shown:
                    shown = ahead
                    report(ahead)
                await asyncio.sleep(POLL_S)
        except BaseException:
            ticket.release()
            raise

    def _release(self, ticket: Ticket) -> None:
        with self._lock:
            if ticket.released:
                return
            ticket.released = True
            self._counts.subtract(ticket.keys)
            for k in ticket.keys:
                if self._counts[k] <= 0:
                    del self._counts[k]
            if ticket.running:
                ticket.running = False
                self._running.discard(ticket)
            elif ticket in self._waiting:
                self._waiting.remove(ticket)

    def snapshot(self) -> dict:
        """Counts for logs and tests: jobs running, waiting, and per visitor key."""
        with self._lock:
            return {"running": len(self._running), "waiting": len(self._waiting), "visitors": dict(self._counts)}
