"""archsearch's test suite (a regular package, so that a site-packages `tests` of some dependency cannot shadow it)."""
