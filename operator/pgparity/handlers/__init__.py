"""kopf registrations (``kopf run -m pgparity.handlers``, or ``pgparity operator``).

Handlers are thin: they parse the object, call the pure builders and the ``kube`` layer, and
patch status. Reconciliation is level-based and event-driven: a coroutine per object compares
what exists with what should, whenever a watch event concerns it and at each resync, so a
restarted operator simply continues where the cluster is.
"""

import pgparity.handlers.events
import pgparity.handlers.indexes
import pgparity.handlers.migration_validation
import pgparity.handlers.staging_clone
import pgparity.handlers.startup  # noqa: F401 - importing registers the handlers
