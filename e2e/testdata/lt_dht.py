#!/usr/bin/python3
"""A libtorrent DHT node for btclient's DHT interoperability tests.

usage: lt_dht.py --listen IP:PORT [--node IP:PORT ...]
                 [--announce INFOHASH --save DIR] [--get-peers INFOHASH --want IP:PORT]
                 [--timeout SECONDS]

Runs a libtorrent session with only the DHT on (no LSD, UPnP, NAT-PMP, no
bootstrap router: nodes come from --node, added with add_dht_node) and the
DHT's per-IP restrictions off, so nodes on 127.0.0.x can route to each other.
Prints "dht up" once it listens, then "dht nodes N" as its table grows.

--announce: adds the torrent INFOHASH (a magnet: no metadata, saved under
DIR), so the session announces itself on the DHT as a peer on its listen
port; forces a DHT announce every 3 s until killed and prints "announcing"
after the first. (session.dht_announce cannot be called from Python 2.0's
bindings: its flags argument has no converter.)
--get-peers: dht_get_peers(INFOHASH) every 2 s; prints every peer a reply
brings as "peer IP:PORT"; exits 0 once --want is among them, 1 after
--timeout seconds.
"""
import argparse
import sys
import time

import libtorrent as lt


def hash_of(hexstr):
    return lt.sha1_hash(bytes.fromhex(hexstr))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--node", action="append", default=[])
    ap.add_argument("--announce")
    ap.add_argument("--save", default=".")
    ap.add_argument("--get-peers")
    ap.add_argument("--want")
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()

    s = lt.session({
        "listen_interfaces": a.listen,
        "enable_dht": True,
        "dht_bootstrap_nodes": "",  # never a public router
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "alert_mask": lt.alert.category_t.dht_notification
        | lt.alert.category_t.dht_operation_notification
        | lt.alert.category_t.error_notification
        | lt.alert.category_t.status_notification,
        "user_agent": "libtorrent-dht-interop-test",
    })
    for n in a.node:
        host, port = n.rsplit(":", 1)
        s.add_dht_node((host, int(port)))
    print("dht up", a.listen, flush=True)
    handle = None
    if a.announce:
        atp = lt.add_torrent_params()
        atp.info_hashes = lt.info_hash_t(hash_of(a.announce))
        atp.save_path = a.save
        handle = s.add_torrent(atp)

    start = time.time()
    last_action = 0.0
    last_nodes = -1
    announced = False
    seen = set()
    while True:
        now = time.time()
        if a.get_peers and now - start > a.timeout:
            print("timeout; peers seen:", sorted(seen), flush=True)
            return 1
        for alert in s.pop_alerts():
            if isinstance(alert, lt.dht_get_peers_reply_alert):
                for ep in alert.peers():
                    peer = "%s:%d" % (ep[0], ep[1])
                    if peer not in seen:
                        seen.add(peer)
                        print("peer", peer, flush=True)
            elif alert.category() & lt.alert.category_t.error_notification:
                print("alert:", alert.message(), flush=True)
        if a.want and a.want in seen:
            print("found", a.want, flush=True)
            return 0
        st = s.status()
        if st.dht_nodes != last_nodes:
            last_nodes = st.dht_nodes
            print("dht nodes", last_nodes, flush=True)
        if now - last_action > (3 if a.announce else 2):
            last_action = now
            if handle is not None and st.dht_nodes > 0:
                handle.force_dht_announce()
                if not announced:
                    announced = True
                    print("announcing", a.announce, flush=True)
            if a.get_peers:
                s.dht_get_peers(hash_of(a.get_peers))
            # Keep re-adding the given nodes until the table has some.
            if st.dht_nodes == 0:
                for n in a.node:
                    host, port = n.rsplit(":", 1)
                    s.add_dht_node((host, int(port)))
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
