<?php
// Event ids are given to accepted events only, in the order they were
// queued: refused calls (invalid input, a full buffer) and evicted events
// never consume one, so a process's ids have no gaps (the sidecar's
// de-duplication state stays one range per process).
require __DIR__ . '/lib.php';

use Scada\Broadcasting\InvalidBroadcastException;
use Scada\Broadcasting\ScadaBroadcastingService as S;

// A tiny buffer and a long linger: the buffer fills between flushes, so
// `reject` calls are refused and `drop_oldest` ones evict older telemetry.
$s = new S(['buffer_bytes' => 65536, 'linger_us' => 10_000_000, 'overflow_rules' => 'tele-*=drop_oldest']);
$refused = 0;
$invalid = 0;
for ($round = 0; $round < 5; $round++) {
    // Telemetry first; then critical events evict it and, once only they
    // are left, are refused. Invalid calls in between.
    for ($i = 0; $i < 200; $i++) {
        $s->broadcastData(['t' => $i], 'tele-x');
        $s->broadcastAggregatedData(['v' => $i], 'tele-agg');
    }
    for ($i = 0; $i < 1000; $i++) {
        try {
            $s->broadcastData(NAN, 'ids');
        } catch (InvalidBroadcastException) {
            $invalid++;
        }
        try {
            $s->broadcastAggregatedData(['bad' => 'x'], 'ids-agg');
        } catch (InvalidBroadcastException) {
            $invalid++;
        }
        if (!$s->broadcastData(['r' => $round, 'i' => $i], 'ids')) {
            $refused++;
        }
    }
    assert($s->flush());
}
$st = $s->stats();
assert($refused > 0 && $refused === $st['dropped_rejected'], "refused=$refused");
assert($invalid === 10000 && $st['invalid'] === $invalid);
assert($st['dropped_evicted'] > 0, 'telemetry was evicted');

$frames = spooled_frames();
$kept = $st['accepted'] - $st['dropped_evicted'];
assert(count($frames) === $kept, count($frames) . " frames, $kept kept");
assert(array_column($frames, 'seq') === range(1, $kept), 'ids 1..n in order, no gaps');
assert(array_unique(array_column($frames, 'origin')) === [$st['origin']]);
assert(in_array('samples', array_column($frames, 'kind'), true), 'samples frames are numbered too');
echo "OK\n";
