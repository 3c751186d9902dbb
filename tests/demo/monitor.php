<?php
// The demo's live view: one line per second, then a verdict.
// usage: php monitor.php STATUS_SOCKET WORK_DIR PRODUCERS TIMEOUT
require dirname(__DIR__) . '/bench/lib.php';
[$_, $status, $work, $producers, $timeout] = $argv;
$t0 = microtime(true);
$prev = ['t' => $t0, 'sent' => 0, 'delivered' => 0, 'received' => 0];
$lastSub = ['p50_ms' => null, 'p99_ms' => null];
printf("%6s %9s %8s %9s | %9s %9s %7s %7s | %9s %9s %7s %7s | %7s %7s\n", 'time', 'produced', '/s', 'journaled',
    'to redis', 'received', 'p50 ms', 'p99 ms', 'to pusher', 'pusher-js', 'p50 ms', 'p99 ms', 'spooled', 'dropped');
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
    $pushed = sink_delivered($st, 'pusher');
    $sub = json_decode((string)@file_get_contents("$work/subscriber.json"), true) ?: [];
    if (isset($sub['p50_ms'])) { $lastSub = $sub; }
    $pjs = json_decode((string)@file_get_contents("$work/pusher-js.json"), true) ?: [];
    $ms = fn($v) => $v !== null ? sprintf('%.1f', $v) : '-';
    $now = microtime(true); $dt = $now - $prev['t'];
    printf("%5.0fs %9d %8.0f %9d | %9d %9d %7s %7s | %9d %9d %7s %7s | %7d %7d\n", $now - $t0, $sent, ($sent - $prev['sent']) / $dt,
        $st['ingest']['events'], $delivered, $sub['count'] ?? 0, $ms($lastSub['p50_ms']), $ms($lastSub['p99_ms']),
        $pushed, $pjs['count'] ?? 0, $ms($pjs['p50_ms'] ?? null), $ms($pjs['p99_ms'] ?? null), $spooled, $dropped + $refused);
    $prev = ['t' => $now, 'sent' => $sent, 'delivered' => $delivered];
    if ($done == $producers && ($sub['count'] ?? 0) >= $sent && ($pjs['count'] ?? 0) >= $sent) {
        printf("\nall %d events produced by %d PHP processes reached both the Redis subscriber and the pusher-js client (via Sockudo); refused %d, dropped %d.\n",
            $sent, $producers, $refused, $dropped);
        exit($refused + $dropped === 0 ? 0 : 1);
    }
    if ($now - $t0 > $timeout) {
        printf("\nTIMEOUT: produced %d; redis: delivered %d, received %d; pusher: delivered %d, received %d\n", $sent, $delivered, $sub['count'] ?? 0, $pushed, $pjs['count'] ?? 0);
        exit(1);
    }
}
