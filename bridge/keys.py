"""Every Redis key the bridge writes, in one place, so that a newcomer can see the whole data model.

RQ keeps its own keys under ``rq:``; ours live under ``bridge:``.
"""

PREFIX = "bridge:"

# Order sync (web → queue → job): the pending marker collapses many shop events into one queued job.
ORDER_PENDING = PREFIX + "order:pending:{order_id}"  # str: "<action>:<seq>" of the newest event
ORDER_STATE = PREFIX + "order:state:{order_id}"  # hash: digest, document, version, updated, delivered_at, seen
ORDER_LOCK = PREFIX + "lock:order:{order_id}"
SEQUENCE = PREFIX + "seq"  # INCR counter giving every accepted event a unique, increasing number

# Shop REST: the leaky bucket shared by all processes, and per-method pauses (OPERATION_TIME_LIMIT).
SHOP_BUCKET = PREFIX + "shop:bucket"  # hash: level, ts
SHOP_PAUSE = PREFIX + "shop:pause:{method}"  # str: unix time the method may be called again
SHOP_WAITS = PREFIX + "shop:waits"  # counter of rate-limit waits (metrics)
SHOP_WAIT_SECONDS = PREFIX + "shop:wait-seconds"  # float counter: seconds spent waiting for the bucket
SHOP_PAUSE_ALL = PREFIX + "shop:pause-all"  # str: unix time any method may be called again (OVERLOAD_LIMIT)

# 1C: the circuit (open while the infobase is locked) and the semaphore capping calls in flight.
ONEC_CIRCUIT = PREFIX + "onec:circuit"  # hash: state, since, reason, retry_at, failures
ONEC_PROBE = PREFIX + "onec:probe"  # lock held by the one call that tests an open circuit
ONEC_SLOTS = PREFIX + "onec:slots"  # zset: lease token → expiry time; list ONEC_SLOTS + ":doorbell" wakes waiters
# 1C's counterparties: a buyer's 1C ref by TIN, else e-mail ("tin" | "email"), and the lock one lookup holds.
COUNTERPARTY = PREFIX + "counterparty:{how}:{value}"  # str: the 1C ref (expires, so a merge in 1C heals)
COUNTERPARTY_LOCK = PREFIX + "lock:counterparty:{how}:{value}"

# Clock: one leader at a time; every clock (leader or standby) beats each tick, for ``bridge health``.
CLOCK_LEADER = PREFIX + "clock:leader"
CLOCK_HEARTBEAT = PREFIX + "clock:heartbeat:{clock}"  # str, expires: JSON {"at": unix time, "leading": bool}

# Polling: how far the shop has been read, and which order versions a poll already queued.
POLL_WATERMARK = PREFIX + "poll:watermark"  # str: ISO dateUpdate of the newest order seen
POLL_LOCK = PREFIX + "lock:poll"
POLL_QUEUED = PREFIX + "poll:queued:{order_id}"  # str: the dateUpdate a poll queued (expires)

# Operations: the sync log, metrics shared by all processes, alert incidents.
SYNC_LOG = PREFIX + "log"  # stream: every operation with a peer (capped)
SYNC_LOG_ENTITY = PREFIX + "log:{entity}:{entity_id}"  # stream: the same, per entity (capped, expires)
METRIC_COUNTER = PREFIX + "metrics:counter:{name}"  # hash: encoded label values → count
METRIC_HISTOGRAM = PREFIX + "metrics:histogram:{name}"  # hash: labels + bucket index → count; labels + sum
ALERT_INCIDENTS = PREFIX + "alerts:incidents"  # hash: alert name → JSON of the open incident
ALERT_OUTBOX = PREFIX + "alerts:outbox"  # zset: JSON notice for one channel → unix time it is due
ALERT_CHECKS = PREFIX + "alerts:checks"  # hash: evaluations (count), checked_at (unix time)

# Updates from 1C (stock, prices, order statuses; kind = "stock" | "prices" | "order-status"): pending values
# coalesced per key, what was last applied per key, and the one flush job per kind.
UPDATES_INBOX = PREFIX + "inbox:{kind}"  # list: batch number, body key, … of accepted bodies not yet split
UPDATES_BODY = PREFIX + "inbox:{kind}:{token}"  # str: one body as 1C sent it (expires until it is accepted)
UPDATES_PENDING = PREFIX + "pending:{kind}"  # hash: item key (JSON) → "<ts>|<seq>|<value JSON>"
UPDATES_APPLIED = PREFIX + "applied:{kind}"  # + ":<generation>", hash: item key (JSON) → "<ts>|<value JSON>" last
# written; a generation's hash expires once it is neither the current nor the previous (bridge.updates.pending)
UPDATES_FLUSH = PREFIX + "flush:pending:{kind}"  # str: enqueue_once marker of the kind's flush job
UPDATES_LOCK = PREFIX + "lock:flush:{kind}"  # one flusher per kind across workers
UPDATES_SPLIT_LOCK = PREFIX + "lock:split:{kind}"  # one splitter of the inbox (or importer staging) per kind
# Shop lookups cached for the flushes (strings with a TTL, so a changed catalog heals by itself).
CACHE_PRODUCT = PREFIX + "cache:product:{how}:{value}"  # str: product id found by xml id or article
CACHE_ARTICLE_PROPERTY = PREFIX + "cache:article-property:{iblock_id}:{code}"  # str: N of propertyN
CACHE_STORE_PRODUCT = PREFIX + "cache:storeproduct:{product_id}:{store_id}"  # str: catalog.storeproduct id
CACHE_PRICE = PREFIX + "cache:price:{product_id}:{price_type_id}"  # str: catalog.price id
CACHE_STORES = PREFIX + "cache:stores"  # str: JSON list of the shop's store ids
CACHE_INVENTORY_MODE = PREFIX + "cache:inventory-mode"  # str: catalog.document.mode.status answer
CACHE_CATALOGS = PREFIX + "cache:catalogs"  # str: JSON rows of catalog.catalog.list
CACHE_PROPERTIES = PREFIX + "cache:properties:{iblock_id}"  # str: JSON rows of catalog.productProperty.list
CACHE_REFERENCES = PREFIX + "cache:{table}"  # str: JSON rows of catalog.measure.list / catalog.vat.list
CACHE_SECTION = PREFIX + "cache:section:{iblock_id}:{xml_id}"  # str: section id found by xmlId
CACHE_IMAGE_URL = PREFIX + "cache:image-url:{digest}"  # str: sha256 of what a picture URL held
# Nomenclature: picture contents by their sha256 (7 days; written by the intake and the exchange, read by the
# products writer), and which contents each shop product already got, so a picture is uploaded once.
IMAGE = PREFIX + "image:{sha256}"  # str: the picture's bytes
PRODUCT_IMAGES = PREFIX + "product:images:{product_id}"  # set: sha256 of the pictures uploaded to it
CACHE_XML_IDS = PREFIX + "cache:xml-ids:{what}"  # str: JSON {xmlId: id} of the shop's price types or stores
# The CommerceML exchange: what was last staged per 1C Ид (what = products | sections | prices | stock).
EXCHANGE_SEEN = PREFIX + "exchange:seen:{what}"  # hash: 1C Ид → fingerprint of what was last staged
STOCK_QUANTITY = PREFIX + "stock:quantity:{product_id}"  # hash: store id → amount ("quantity" strategy)
# 1C's standard exchange (/1c/exchange): sessions by a hash of their cookie, each with a public id (sid); the
# files uploaded in a session, stored in parts of a fixed size; the import of each file and its job's marker.
EXCHANGE_SESSION = PREFIX + "exchange:session:{cookie_hash}"  # hash: sid, sessid, timestamp, version, type, bytes
EXCHANGE_FILES = PREFIX + "exchange:files:{sid}"  # hash: sanitised file name → bytes stored
EXCHANGE_PART = PREFIX + "exchange:part:{sid}:{fid}:{n}"  # str: part n of a file (fid: a digest of its name)
EXCHANGE_IMPORT = PREFIX + "exchange:import:{entity}"  # hash: state, name, batch, records, message, counts
EXCHANGE_IMPORT_PENDING = PREFIX + "exchange:import:pending:{entity}"  # str: marker of the import's job
EXCHANGE_UNZIPPED = PREFIX + "exchange:unzipped:{sid}"  # set: zips of the session already unpacked
EXCHANGE_IMPORTS = PREFIX + "exchange:imports:{sid}"  # set: the import entities of a session (init clears them)
# The order side of the exchange (type=sale): orders waiting for 1C's query and what each session's last query
# offered (bridge.exchange.sale.offers); orders held while neither 1C channel is configured.
SALE_WAITING = PREFIX + "exchange:sale:waiting"  # zset: order id → unix time it began to wait (oldest first)
SALE_STAMPS = PREFIX + "exchange:sale:stamps"  # hash: order id → change stamp the bridge last saw
SALE_OFFERED = PREFIX + "exchange:sale:offered:{session}"  # hash: order id → stamp a session's last query offered
SALE_CONFIRMED = PREFIX + "exchange:sale:confirmed:{session}"  # str: how many that session's success confirmed
ORDERS_AWAITING_CHANNEL = PREFIX + "orders:awaiting-channel"  # set: order ids held until a 1C channel is set
SALE_HELD_STATUS = PREFIX + "exchange:sale:held-status:"  # prefix of the (unused) marker of a held 1C status job
SALE_IMPORT_PENDING = PREFIX + "exchange:sale-import:pending:{entity}"  # str: marker of a documents import's job
# Order jobs one running job took off the queue to fetch their orders with its own (bridge.orders.claims).
ORDER_CLAIMS = PREFIX + "order:claims"  # zset: RQ job id → unix time the claim expires unless renewed
# Updates held back by the bridge's own setup (an unmapped store, price type or status; a missing article
# property): kept, not dropped, until a person fixes the mappings and retries the dead letter filed for them.
UPDATES_HELD = PREFIX + "held:{kind}"  # hash: item key (JSON) → "<reason digest>|<ts>|<seq>|<value JSON>"
UPDATES_HELD_REASONS = PREFIX + "held:{kind}:reasons"  # hash: reason digest → JSON {reason, class}
UPDATES_HELD_LETTERS = PREFIX + "held:{kind}:letters"  # hash: reason digest → id of its dead letter
# What became of each push or exchange file (GET /1c/batches/{batch}); both expire after BATCH_TTL.
BATCH = PREFIX + "batch:{batch}"  # hash: accepted, applied, unchanged, superseded, held, dropped, held:<class>, …
BATCH_OF_SEQ = PREFIX + "batch:seq:{seq}"  # str: the batch whose items were staged with this sequence number
