<?php
// The SSE benchmark's updates: every 1/RATE s one `bench.tick` event on each of
// CHANNELS channels (bench-0 ..), carrying the channel's number, the tick's
// number (seq, so clients see a missed one) and the producer's clock (sent_us,
// microseconds since the epoch) for the clients' latency, for SECONDS.
// usage: php -d extension=... ticker.php CHANNELS RATE_PER_CHANNEL SECONDS
// Prints {"sent", "refused", "seconds", "rate"} (events/s over all channels).
if ($argc !== 4 || !ctype_digit($argv[1]) || !ctype_digit($argv[2]) || !is_numeric($argv[3]) || (int) $argv[1] < 1 || (int) $argv[2] < 1) {
    fwrite(STDERR, "usage: ticker.php CHANNELS RATE_PER_CHANNEL SECONDS\n");
    exit(2);
}
[$channels, $rate, $seconds] = [(int) $argv[1], (int) $argv[2], (float) $argv[3]];
$s = new Scada\Broadcasting\ScadaBroadcastingService();
$sent = $refused = $tick = 0;
$t0 = microtime(true);
while (($now = microtime(true)) - $t0 < $seconds) {
    for ($c = 0; $c < $channels; $c++) {
        $ok = $s->broadcast("bench-$c", 'bench.tick', ['channel' => $c, 'seq' => $tick, 'sent_us' => (int) (microtime(true) * 1e6)]);
        $ok ? $sent++ : $refused++;
    }
    $tick++;
    $next = $t0 + $tick / $rate; // paced on the clock: no drift
    if (($wait = $next - microtime(true)) > 0) {
        usleep((int) ($wait * 1e6));
    }
}
$elapsed = microtime(true) - $t0;
$flushed = $s->flush(30000);
echo json_encode(['sent' => $sent, 'refused' => $refused, 'seconds' => round($elapsed, 3), 'rate' => round($sent / $elapsed, 1), 'flushed' => $flushed]), "\n";
exit($flushed ? 0 : 1);
