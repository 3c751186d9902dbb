<?php
// Hand-off cost per call for a 6-key SCADA sample.
// usage: php -d extension=... handoff.php [N] [broadcastData|broadcastAggregatedData]
require __DIR__ . '/lib.php';
$n = (int)($argv[1] ?? 200000);
$method = $argv[2] ?? 'broadcastData';
$call = $method === 'broadcastAggregatedData'
    ? fn($s, $sample) => $s->broadcastAggregatedData($sample, 'scada-aggregated', 100)
    : fn($s, $sample) => $s->broadcastData($sample, 'scada-realtime');
$s = new Scada\Broadcasting\ScadaBroadcastingService();
for ($i = 0; $i < 10000; $i++) { $call($s, scada_sample($i)); } // warm-up
$s->flush();
$lat = [];
$samples = [];
for ($i = 0; $i < $n; $i++) { $samples[] = scada_sample($i); }
$t0 = hrtime(true);
for ($i = 0; $i < $n; $i++) {
    $a = hrtime(true);
    $call($s, $samples[$i]);
    $lat[] = hrtime(true) - $a;
}
$total = (hrtime(true) - $t0) / 1e9;
$s->flush();
sort($lat);
$st = $s->stats();
printf("handoff %s n=%d p50=%.2fus p99=%.2fus p99.9=%.2fus max=%.0fus calls/s=%.0f spooled=%d dropped=%d\n",
    $method, $n, percentile($lat, .5) / 1e3, percentile($lat, .99) / 1e3, percentile($lat, .999) / 1e3, end($lat) / 1e3, $n / $total, $st['spooled'], $st['dropped']);
