<?php
// The demo's live view: one line per second, then a verdict.
// usage: php monitor.php STATUS_SOCKET WORK_DIR PRODUCERS TIMEOUT
require dirname(__DIR__, 2) . '/bench/lib.php';
[$_, $status, $work, $producers, $timeout] = $argv;
$t0 = microtime(true);
$prev = ['t' => $t0, 'sent' => 0, 'delivered' => 0, 'received' => 0];
$lastSub = ['p50_ms' => null, 'p99_ms' => null];
printf("%6s %10s %9s %10s %10s %9s %10s %8s %8s %7s %7s\n", 'time', 'produced', '/s', 'journaled', 'to redis', '/s', 'received', 'p50 ms', 'p99 ms', 'spooled', 'dropped');
while (true) {
    sleep(1);
    $sent = 0; $refused = 0; $done = 0; $spooled = 0; $dropped = 0;
    foreach (glob("$work/producer-*.json") as $f) {
        $p = json_decode((string)file_get_contents($f), true) ?: [];
        $sent += $p['sent'] ?? 0; $refused += $p['refused'] ?? 0; $done += !empty($p['done']);
        $spooled += $p['stats']['spooled'] ?? 0; $dropped += $p['stats']['dropped'] ?? 0;
    }
    $st = sidecar_status($status);
    $delivered = sink_delivered($st, 'redis');
    $sub = json_decode((string)@file_get_contents("$work/subscriber.json"), true) ?: [];
    if (isset($sub['p50_ms'])) { $lastSub = $sub; }
    $now = microtime(true); $dt = $now - $prev['t'];
    printf("%5.0fs %10d %9.0f %10d %10d %9.0f %10d %8s %8s %7d %7d\n", $now - $t0, $sent, ($sent - $prev['sent']) / $dt,
        $st['ingest']['events'], $delivered, ($delivered - $prev['delivered']) / $dt, $sub['count'] ?? 0,
        $lastSub['p50_ms'] !== null ? sprintf('%.1f', $lastSub['p50_ms']) : '-', $lastSub['p99_ms'] !== null ? sprintf('%.1f', $lastSub['p99_ms']) : '-',
        $spooled, $dropped + $refused);
    $prev = ['t' => $now, 'sent' => $sent, 'delivered' => $delivered];
    if ($done == $producers && ($sub['count'] ?? 0) >= $sent) {
        printf("\nall %d events produced by %d PHP processes were delivered to Redis and received by the subscriber; refused %d, dropped %d.\n",
            $sent, $producers, $refused, $dropped);
        exit($refused + $dropped === 0 ? 0 : 1);
    }
    if ($now - $t0 > $timeout) {
        printf("\nTIMEOUT: produced %d, delivered %d, received %d\n", $sent, $delivered, $sub['count'] ?? 0);
        exit(1);
    }
}
