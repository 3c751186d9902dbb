<?php
// A producer process for the chaos tests: sends events with ids it can be
// held to, paced or as fast as it can, and reports what it saw.
//   php -d extension=... producer.php ID COUNT CHANNELS RATE [STALL_FILE]
// Event: broadcast("chaos-<i % CHANNELS>", "tick", {"p": ID, "i": i}).
// RATE events/s (0 = as fast as possible). If STALL_FILE exists when the run
// ends it holds "start end" (unix seconds): the p50/p99/max of calls made in
// that window are reported. Output: one JSON line.
[$_, $id, $count, $channels, $rate] = $argv;
$stallFile = $argv[5] ?? null;
[$id, $count, $channels, $rate] = [(int)$id, (int)$count, (int)$channels, (float)$rate];
$s = new Scada\Broadcasting\ScadaBroadcastingService();
$at = [];   // call start, µs since $t0
$lat = [];  // call duration, ns
$refused = 0;
$t0 = microtime(true);
$h0 = hrtime(true);
for ($i = 0; $i < $count; $i++) {
    if ($rate > 0 && $i % 100 === 0) {
        $wait = $t0 + $i / $rate - microtime(true);
        if ($wait > 0) { usleep((int)($wait * 1e6)); }
    }
    $a = hrtime(true);
    $ok = $s->broadcast('chaos-' . ($i % $channels), 'tick', ['p' => $id, 'i' => $i]);
    $b = hrtime(true);
    $at[] = intdiv($a - $h0, 1000);
    $lat[] = $b - $a;
    if (!$ok) { $refused++; }
}
$t1 = microtime(true);
$flushed = $s->flush(10000);
$report = ['id' => $id, 'sent' => $count, 'refused' => $refused, 'first' => $t0, 'last' => $t1, 'flushed' => $flushed, 'stats' => $s->stats()];
$sorted = $lat;
sort($sorted);
$report['all'] = ['p50_us' => $sorted[intdiv(count($sorted), 2)] / 1e3, 'p99_us' => $sorted[(int)(count($sorted) * 0.99)] / 1e3, 'max_us' => end($sorted) / 1e3];
if ($stallFile !== null) {
    // The test writes the stall window once it is over; wait for it briefly.
    for ($w = 0; $w < 100 && !is_file($stallFile); $w++) { usleep(100000); }
    if (is_file($stallFile)) {
        [$from, $to] = array_map('floatval', explode(' ', trim(file_get_contents($stallFile))));
        $inWindow = [];
        foreach ($at as $k => $us) {
            $t = $t0 + $us / 1e6;
            if ($t >= $from && $t <= $to) { $inWindow[] = $lat[$k]; }
        }
        sort($inWindow);
        $n = count($inWindow);
        $report['stall'] = ['calls' => $n, 'p50_us' => $n ? $inWindow[intdiv($n, 2)] / 1e3 : null, 'p99_us' => $n ? $inWindow[(int)($n * 0.99)] / 1e3 : null, 'max_us' => $n ? end($inWindow) / 1e3 : null];
    }
}
echo json_encode($report), "\n";
