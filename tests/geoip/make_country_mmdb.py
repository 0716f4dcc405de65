"""Writes a small country database in MaxMind DB format for the tests.

Loopback addresses stand in for clients of different countries:
127.0.0.2 is in Romania, 127.0.0.3 in Germany, ::1 in the United States;
127.0.0.1 is not in the database (an unknown country). With --moved,
127.0.0.2 is in Germany instead (a newer database, for reload tests).
"""
import sys

from mmdb_writer import MMDBWriter
from netaddr import IPSet

COUNTRIES = {
    "RO": ["127.0.0.2/32"],
    "DE": ["127.0.0.3/32"],
    "US": ["::1/128"],
}

if "--moved" in sys.argv:
    COUNTRIES["DE"].append("127.0.0.2/32")
    COUNTRIES["RO"] = []

writer = MMDBWriter(ip_version=6, database_type="Loomiere-Test-Country",
                    languages=["en"], description="Loomiere test countries",
                    ipv4_compatible=True)
for code, networks in COUNTRIES.items():
    if not networks:
        continue
    writer.insert_network(IPSet(networks), {"country": {"iso_code": code}})
writer.to_db_file(sys.argv[1])
