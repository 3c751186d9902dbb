<?php
// A plain telemetry feed for the dashboard's load test and benchmark: --tags tags
// (T-001, T-002, ...) on one channel, one broadcastData() sample per call (the
// sidecar passes them on raw, or aggregates them when a throttle rule matches the
// channel), paced at --rate samples/s or flat out (--rate=0), for --seconds or
// --count samples; with --channels=N (N > 1) over N channels {channel}-0 ..
// {channel}-(N-1), round robin. The tag list goes out first as `scada.tags`; with
// --alarm-channel one `scada.alarm` (T-001 high) follows the last sample, from
// the same process, so its id comes after every sample's.
//
//   php -d extension=target/release/libscada_broadcast.so tests/demo/feed.php \
//     [--channel=plant-live] [--channels=1] [--tags=36] [--rate=10000] [--seconds=10] [--count=0] [--alarm-channel=]
// Prints what it sent as JSON (samples, refused, seconds, rate achieved); exit 1
// if flush() fails, 2 on a bad argument.

const USAGE = 'usage: feed.php [--channel=NAME] [--channels=N] [--tags=N] [--rate=N samples/s, 0 = flat out] [--seconds=N] [--count=N (0 = --seconds decides)] [--alarm-channel=NAME]';

function fail(string $message): never
{
    fwrite(STDERR, "feed.php: $message\n" . USAGE . "\n");
    exit(2);
}

$o = ['channel' => 'plant-live', 'channels' => '1', 'tags' => '36', 'rate' => '10000', 'seconds' => '10', 'count' => '0', 'alarm-channel' => ''];
foreach (array_slice($argv, 1) as $arg) {
    if (!preg_match('/^--([a-z-]+)=(.*)$/', $arg, $m) || !array_key_exists($m[1], $o)) {
        fail("unknown argument $arg");
    }
    $o[$m[1]] = $m[2];
}
foreach (['channels' => [1, 100], 'tags' => [1, 1000], 'rate' => [0, 10000000], 'count' => [0, PHP_INT_MAX]] as $k => [$min, $max]) {
    if (filter_var($o[$k], FILTER_VALIDATE_INT, ['options' => ['min_range' => $min, 'max_range' => $max]]) === false) {
        fail("--$k must be an integer from $min to $max, got {$o[$k]}");
    }
    $o[$k] = (int) $o[$k];
}
if (!is_numeric($o['seconds']) || (float) $o['seconds'] <= 0) {
    fail("--seconds must be a positive number, got {$o['seconds']}");
}
$seconds = (float) $o['seconds'];

$units = ['°C', 'bar', 'm³/h', '%', 'A', 'kW'];
$tags = [];
for ($i = 1; $i <= $o['tags']; $i++) {
    $tags[] = ['tag' => sprintf('T-%03d', $i), 'label' => "Tag $i", 'unit' => $units[($i - 1) % count($units)], 'area' => 'Area ' . (1 + intdiv($i - 1, 12)), 'lo' => 10, 'hi' => 90];
}
$s = new Scada\Broadcasting\ScadaBroadcastingService();
$channels = $o['channels'] === 1 ? [$o['channel']] : array_map(fn ($k) => "{$o['channel']}-$k", range(0, $o['channels'] - 1));
foreach ($channels as $channel) {
    $s->broadcast($channel, 'scada.tags', ['tags' => $tags]);
}
$c = count($channels);

$n = count($tags);
$sent = 0;
$refused = 0;
$t0 = microtime(true);
for (;;) {
    $now = microtime(true);
    if ($o['count'] > 0 ? $sent + $refused >= $o['count'] : $now - $t0 >= $seconds) {
        break;
    }
    // Paced: catch up to where the clock says we should be, then sleep a little.
    $due = $o['rate'] === 0 ? $sent + $refused + 1000 : (int) (($now - $t0) * $o['rate']);
    if ($o['count'] > 0) {
        $due = min($due, $o['count']);
    }
    while ($sent + $refused < $due) {
        $i = $sent + $refused;
        $tag = $tags[$i % $n];
        $sample = ['channel' => $tag['tag'], 'value' => round(50 + 30 * sin($i / 997 + $i % $n), 3), 'unit' => $tag['unit']];
        $s->broadcastData($sample, $channels[$i % $c]) ? $sent++ : $refused++;
    }
    if ($o['rate'] > 0) {
        usleep(1000);
    }
}
$elapsed = microtime(true) - $t0;
$alarms = 0;
if ($o['alarm-channel'] !== '') {
    $at = DateTimeImmutable::createFromFormat('U.u', sprintf('%.6F', microtime(true)))->format('Y-m-d\TH:i:s.u\Z');
    $alarms = $s->broadcast($o['alarm-channel'], 'scada.alarm', ['tag' => 'T-001', 'state' => 'high', 'value' => 97.5, 'limit' => 90, 'unit' => '°C',
        'message' => "T-001 above 90 °C after $sent samples", 'at' => $at]) ? 1 : 0;
}
$flushed = $s->flush(60000);
echo json_encode(['samples' => $sent, 'refused' => $refused, 'alarms' => $alarms, 'seconds' => round($elapsed, 3),
    'rate' => round($sent / max($elapsed, 1e-9)), 'flushed' => $flushed]), "\n";
exit($flushed ? 0 : 1);
