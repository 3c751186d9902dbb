<?php
// Hand-off cost of broadcastData for a 6-key SCADA sample, per call.
// usage: php -d extension=... handoff.php [N]
require __DIR__ . '/lib.php';
$n = (int)($argv[1] ?? 200000);
$s = new Scada\Broadcasting\ScadaBroadcastingService();
for ($i = 0; $i < 10000; $i++) { $s->broadcastData(scada_sample($i), 'scada-realtime'); } // warm-up
$s->flush();
$lat = [];
$samples = [];
for ($i = 0; $i < $n; $i++) { $samples[] = scada_sample($i); }
$t0 = hrtime(true);
for ($i = 0; $i < $n; $i++) {
    $a = hrtime(true);
    $s->broadcastData($samples[$i], 'scada-realtime');
    $lat[] = hrtime(true) - $a;
}
$total = (hrtime(true) - $t0) / 1e9;
$s->flush();
sort($lat);
$st = $s->stats();
printf("handoff broadcastData n=%d p50=%.2fus p99=%.2fus p99.9=%.2fus max=%.0fus calls/s=%.0f spooled=%d dropped=%d\n",
    $n, percentile($lat, .5) / 1e3, percentile($lat, .99) / 1e3, percentile($lat, .999) / 1e3, end($lat) / 1e3, $n / $total, $st['spooled'], $st['dropped']);
