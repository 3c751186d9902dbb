<?php
// End-to-end events/s delivered by the sidecar to a sink, with P producer
// processes each sending N events: from the first call to the moment the
// sidecar reports all of them delivered (PUBLISH acknowledged by Redis).
// usage: php throughput.php STATUS_SOCKET EXTENSION PRODUCERS N [sink]
require __DIR__ . '/lib.php';
[$_, $statusSocket, $ext, $producers, $n] = $argv;
$sink = $argv[5] ?? 'redis';
$producers = (int)$producers; $n = (int)$n;
$before = sidecar_idle($statusSocket, $sink);
$procs = [];
$t0 = hrtime(true);
for ($p = 0; $p < $producers; $p++) {
    $procs[] = proc_open([PHP_BINARY, '-d', "extension=$ext", __DIR__ . '/produce.php', (string)$n], [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes[$p]);
}
$target = $before + $producers * $n;
$deadline = microtime(true) + (float)(getenv("BENCH_WAIT_SECONDS") ?: 120);
do {
    usleep(2000);
    $delivered = sink_delivered(sidecar_status($statusSocket), $sink);
} while ($delivered < $target && microtime(true) < $deadline);
$elapsed = (hrtime(true) - $t0) / 1e9;
$out = '';
foreach ($procs as $p => $proc) { $out .= stream_get_contents($pipes[$p][1]) . stream_get_contents($pipes[$p][2]); proc_close($proc); }
$got = $delivered - $before;
printf("e2e %s producers=%d events=%d delivered=%d elapsed=%.3fs rate=%.0f events/s\n", $sink, $producers, $producers * $n, $got, $elapsed, $got / $elapsed);
fwrite(STDERR, $out);
if ($got !== $producers * $n) {
    $st = sidecar_status($statusSocket);
    fwrite(STDERR, "MISSING " . ($producers * $n - $got) . " events; sidecar ingest: " . json_encode($st['ingest'])
        . "\nsinks: " . json_encode($st['sinks']) . "\nspool files: " . json_encode(glob(($st['spool_dir'] ?? '') . '/*')) . "\n");
    exit(1);
}
