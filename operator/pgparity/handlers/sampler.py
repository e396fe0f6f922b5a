"""One loop samples every Ready clone for the live gauges (replication lag, lock waits).

Every ``PGPARITY_MONITOR_SECONDS`` it takes the Ready clones from the clone index and samples
them, at most ``PGPARITY_SAMPLER_CONCURRENCY`` at a time, each sample a short connection with
timeouts in the blocking pool. Between rounds it holds nothing but a timer. A clone's DSN is
read from its Secret once and again only after a failed sample or a change of Secret, so an idle
operator does not read Secrets over and over. A clone that is no longer Ready (or is gone)
loses its sampled series: stale lag is worse than none.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from pgparity import metrics
from pgparity.clonecheck import sample_clone
from pgparity.errors import CallTimeoutError, DatabaseError, KubeError
from pgparity.handlers.common import Runtime, api, database, options
from pgparity.handlers.indexes import Ref
from pgparity.kube import client as kube
from pgparity.models.staging_clone import ClonePhase

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KnownDsn:
    """A clone's DSN, and the Secret it was read from (read again when that changes)."""

    secret: str
    dsn: str


@dataclass
class Sampler:
    shared: Runtime
    dsns: dict[Ref, KnownDsn] = field(default_factory=dict)
    sampled: set[Ref] = field(default_factory=set)

    def ready(self) -> dict[Ref, str]:
        """The Ready clones and their connection Secrets, as the index shows them now."""
        return {
            ref: view.secret
            for ref, store in self.shared.views.clones.items()
            for view in store
            if view.phase == ClonePhase.READY.value and view.secret
        }

    async def round(self) -> None:
        ready = self.ready()
        for gone in self.sampled - ready.keys():
            metrics.forget_samples(*gone)
            self.dsns.pop(gone, None)
        self.sampled = set(ready)
        await asyncio.gather(*(self.sample(ref, secret) for ref, secret in ready.items()))

    async def sample(self, ref: Ref, secret: str) -> None:
        async with self.shared.sampling:
            try:
                dsn = await self.dsn(ref, secret)
                if dsn is None:
                    return
                about = ("sample", *ref)
                sample = await database("sampling the clone", about, sample_clone, dsn)
            except (DatabaseError, KubeError, CallTimeoutError) as exc:
                self.dsns.pop(ref, None)  # read the Secret again next time
                logger.warning("cannot sample clone %s/%s: %s", *ref, exc)
                return
        metrics.set_clone_sample(
            *ref,
            lag_bytes=sample.lag_bytes,
            waiting=sample.waiting_sessions,
            longest_wait=sample.longest_wait_seconds,
        )

    async def dsn(self, ref: Ref, secret: str) -> str | None:
        known = self.dsns.get(ref)
        if known is not None and known.secret == secret:
            return known.dsn
        dsn = await api(kube.secret_value, ref[0], secret, "dsn")
        if dsn:
            self.dsns[ref] = KnownDsn(secret, dsn)
        return dsn


async def sample_clones(shared: Runtime) -> None:
    sampler = Sampler(shared)
    while True:
        try:
            await sampler.round()
        except Exception:  # a bug must not end the sampling for the operator's lifetime
            logger.exception("sampling the clones failed; trying again in the next round")
        await asyncio.sleep(options().monitor_seconds)
