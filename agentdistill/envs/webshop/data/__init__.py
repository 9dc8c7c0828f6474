"""Package data: the shipped synthetic WebShop catalog (see scripts/make_webshop_catalog.py)."""
