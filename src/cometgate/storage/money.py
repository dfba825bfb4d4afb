"""How an amount of USD is written wherever the gateway shows one: the admin API (keys and
usage), the balance route, the CSV export and the command line.

Exact decimal text without trailing zeros — "10", "0.25", "0.000000001", never "1E+1",
"0E-9" or "0.250000000". One form, so a figure copied from one place compares equal as text
with the same figure anywhere else; it is exact at every scale the ledger keeps (budgets to
the millionth, costs to the billionth), so nothing is rounded away.
"""

from __future__ import annotations

from decimal import Decimal


def money_text(amount: Decimal) -> str:
    text = f"{amount:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
