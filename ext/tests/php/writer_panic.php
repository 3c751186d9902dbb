<?php
// Run with SCADA_FAILPOINTS=writer.loop=panic@3x1: the writer thread panics
// on its fourth turn. The panic never reaches PHP; calls then throw
// BroadcastException naming it, stats() shows it, and the events the
// writer held are counted as lost (the harness checks the loss record and
// PHP's log).
require __DIR__ . '/lib.php';

use Scada\Broadcasting\BroadcastException;
use Scada\Broadcasting\ScadaBroadcastingService as S;

$s = new S(['linger_us' => 5_000_000]); // events stay in the outbox
for ($i = 0; $i < 10; $i++) {
    assert($s->broadcastData(['i' => $i]) === true);
}
$deadline = microtime(true) + 10;
while ($s->stats()['writer_panics'] === 0) {
    if (microtime(true) > $deadline) {
        fail('the writer did not panic: ' . json_encode($s->stats()));
    }
    usleep(1000);
}
$st = $s->stats();
assert($st['lost'] === 10, json_encode($st));
assert($st['writer_running'] === 0 && $st['buffered'] === 0, json_encode($st));
assert(str_contains($st['last_error'], 'writer thread panicked: failpoint writer.loop'), $st['last_error']);
file_put_contents(getenv('TEST_DIR') . '/held', (string)$st['lost']);
expect_throw('a call after the panic', fn () => $s->broadcastData(['late' => 1]), BroadcastException::class, 'the writer thread panicked: failpoint writer.loop');
expect_throw('flush after the panic', fn () => $s->flush(), BroadcastException::class, 'can no longer send events');
expect_throw('aggregated', fn () => $s->broadcastAggregatedData(['v' => 1]), BroadcastException::class, 'panicked');
assert($s->stats()['accepted'] === 10);
echo "OK\n";
