"""The WSGI app as uWSGI's master loads it, once, before it forks the workers
(``digestsite.web``): Django, the app, then the sentence model on one compute thread, so
that every worker starts with them loaded and shares those pages instead of loading its
own copy (the model's weights are mapped from one file under ``VAR_DIR`` in any case).
Then what was loaded is frozen out of the garbage collector's sight (``gc.freeze``, as
Python's documentation advises for servers that fork): a full collection in a worker
walked the 150,000 objects of Django, the app and the model, stopping its threads for
70-260 ms; with them frozen it walks those made since (``bench/README.md``). A code change
needs a restart to reach the workers."""

import gc

from digestsite.wsgi import application
from ranking import semantic

semantic.load_before_fork(1)
gc.collect()
gc.freeze()

__all__ = ["application"]
