"""WebShop (Yao et al., 2022) as an offline, pip-installable text environment."""
