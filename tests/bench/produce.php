<?php
// A producer process: N broadcastData calls as fast as possible, then flush.
// usage: php -d extension=... produce.php N [channel]
require __DIR__ . '/lib.php';
$n = (int)$argv[1];
$channel = $argv[2] ?? 'scada-realtime';
$s = new Scada\Broadcasting\ScadaBroadcastingService();
$t0 = hrtime(true);
for ($i = 0; $i < $n; $i++) { $s->broadcastData(scada_sample($i), $channel); }
$t1 = hrtime(true);
$ok = $s->flush();
$st = $s->stats();
printf("producer pid=%d n=%d calls=%.3fs flush_ok=%s sent=%d spooled=%d dropped=%d\n", getmypid(), $n, ($t1 - $t0) / 1e9, $ok ? 'yes' : 'no', $st['sent'], $st['spooled'], $st['dropped']);
