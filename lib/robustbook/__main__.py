"""``python -m robustbook``: the chapter runner (see :mod:`robustbook.run`)."""
from robustbook.run import main

raise SystemExit(main())
