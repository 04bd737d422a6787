"""``postwire``: the operator's command line (bootstrap tenants, keys, sender ids) and ``postwire dev``."""
