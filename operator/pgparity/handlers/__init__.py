"""kopf registrations (``kopf run -m pgparity.handlers``, or ``pgparity operator``).

Handlers are thin: they parse the object, call the pure builders and the ``kube`` layer, and
patch status. Reconciliation is level-based: a timer per object compares what exists with what
should, so a restarted operator simply continues where the cluster is.
"""

import pgparity.handlers.migration_validation
import pgparity.handlers.staging_clone
import pgparity.handlers.startup  # noqa: F401 - importing registers the handlers
