<?php
// Host-wide aggregation through the sidecar.
//   php aggregate.php accept STATUS_SOCKET EXT PRODUCERS N
//       samples/s accepted into aggregation: PRODUCERS processes send N
//       single-sample broadcastAggregatedData calls each, as fast as they can
//   php aggregate.php output STATUS_SOCKET EXT REDIS_PORT CHANNELS THROTTLE_MS SECONDS
//       events/s reaching a Redis subscriber while one producer feeds CHANNELS
//       channels continuously (expected: CHANNELS x 1000 / THROTTLE_MS)
require __DIR__ . '/lib.php';
$mode = $argv[1];
[$status, $ext] = [$argv[2], $argv[3]];
$root = dirname(__DIR__, 2);

function throttle_consumed(string $status): int
{
    foreach (sidecar_status($status)['sinks'] as $s) {
        if ($s['kind'] === 'throttle') { return (int)$s['messages']; }
    }
    return 0;
}

if ($mode === 'accept') {
    [$producers, $n] = [(int)$argv[4], (int)$argv[5]];
    sidecar_idle($status, 'throttle');
    $before = throttle_consumed($status);
    $code = <<<'PHP'
        <?php
        $n = (int)$argv[1]; $p = (int)$argv[2];
        $s = new Scada\Broadcasting\ScadaBroadcastingService();
        for ($i = 0; $i < $n; $i++) {
            $s->broadcastAggregatedData(['channel' => 'PLC-' . ($i % 16), 'value' => $i % 100 / 10], 'agg-' . ($i % 4), 100);
        }
        $s->flush();
        $st = $s->stats();
        fwrite(STDERR, "producer sent={$st['sent']} spooled={$st['spooled']} dropped={$st['dropped']}\n");
        PHP;
    $file = inline_script($code);
    $t0 = microtime(true);
    $procs = [];
    for ($p = 0; $p < $producers; $p++) {
        $procs[] = proc_open([PHP_BINARY, '-d', "extension=$ext", $file, (string)$n, (string)$p], [2 => ['pipe', 'w']], $pipes[$p]);
    }
    $target = $before + $producers * $n;
    $deadline = microtime(true) + 60;
    do { usleep(2000); $got = throttle_consumed($status); } while ($got < $target && microtime(true) < $deadline);
    $elapsed = microtime(true) - $t0;
    foreach ($procs as $p => $proc) { fwrite(STDERR, stream_get_contents($pipes[$p][2])); proc_close($proc); }
    printf("aggregation accepted producers=%d samples=%d consumed=%d elapsed=%.3fs rate=%.0f samples/s\n",
        $producers, $producers * $n, $got - $before, $elapsed, ($got - $before) / $elapsed);
} else {
    [$port, $channels, $throttle, $seconds] = [(int)$argv[4], (int)$argv[5], (int)$argv[6], (float)$argv[7]];
    $statsFile = tempnam(sys_get_temp_dir(), 'sub');
    $sub = proc_open([PHP_BINARY, "$root/tests/bin/subscribe.php", (string)$port, 'laravel_database_out-*', $statsFile, '--stats'], [], $pp);
    while (!str_contains((string)@file_get_contents($statsFile), 'ready')) { usleep(20000); }
    $code = <<<'PHP'
        <?php
        [$_, $channels, $throttle, $seconds] = $argv;
        $s = new Scada\Broadcasting\ScadaBroadcastingService();
        $t0 = microtime(true); $i = 0;
        while (microtime(true) - $t0 < $seconds) {
            for ($k = 0; $k < 100; $k++, $i++) { $s->broadcastAggregatedData(['channel' => 'PLC-' . ($i % 8), 'value' => $i % 50], 'out-' . ($i % $channels), (int)$throttle); }
            usleep(1000);
        }
        $s->flush();
        echo $i;
        PHP;
    $file = inline_script($code);
    $t0 = microtime(true);
    $samples = (int)shell_exec(escapeshellarg(PHP_BINARY) . ' -d extension=' . escapeshellarg($ext) . " $file $channels $throttle $seconds");
    $elapsed = microtime(true) - $t0;
    usleep(($throttle + 200) * 1000);
    $events = json_decode((string)file_get_contents($statsFile), true)['count'] ?? 0;
    proc_terminate($sub); proc_close($sub); @unlink($statsFile);
    printf("aggregation output channels=%d throttle=%dms samples=%d in %.1fs -> %d events = %.1f events/s (expected about %.1f/s)\n",
        $channels, $throttle, $samples, $elapsed, $events, $events / $elapsed, $channels * 1000 / $throttle);
}
