<?php
// Run with SCADA_FAILPOINTS=spool.write=errno:N (ENOSPC, EIO, EROFS, EACCES)
// and no sidecar: nothing can take events. The first call is accepted (the
// writer finds out afterwards); from then on `reject` calls return false and
// are counted, `drop_oldest` ones stay in the bounded buffer. flush() says
// nothing is durable. At exit the harness (ext/tests/php.rs) checks that
// every accepted event is reported: PHP's log and a loss record.
require __DIR__ . '/lib.php';

use Scada\Broadcasting\ScadaBroadcastingService as S;

// The writer finishes within the shutdown timeout (valgrind is slow): the
// harness expects its own report (no_destination), not the process's give-up.
$timeout = getenv('TEST_UNDER_VALGRIND') ? 5000 : 300;
$s = new S(['linger_us' => 100, 'shutdown_timeout_ms' => $timeout]);
$telemetry = new S(['linger_us' => 100, 'shutdown_timeout_ms' => $timeout, 'overflow' => 'drop_oldest']);
assert($s->broadcastData(['i' => 0]) === true);
$deadline = microtime(true) + 10;
while (!$s->stats()['no_destination']) {
    if (microtime(true) > $deadline) {
        fail('the writer never reported that nothing can take events: ' . json_encode($s->stats()));
    }
    usleep(1000);
}
for ($i = 1; $i <= 100; $i++) {
    assert($s->broadcastData(['i' => $i]) === false, "call $i must be refused");
}
for ($i = 0; $i < 10; $i++) {
    assert($telemetry->broadcastData(['t' => $i]) === true, 'drop_oldest events stay in the buffer');
}
$st = $s->stats();
assert($st['dropped_no_destination'] === 100, json_encode($st));
assert($st['accepted'] === 11 && $st['spooled'] === 0 && $st['sent'] === 0, json_encode($st));
assert($st['held'] === 1, 'the first event is held by the writer');
// The writer retries both the sidecar and the spool: last_error names
// whichever failed last, the spool's failure at its next retry.
$deadline = microtime(true) + 10;
while (!str_contains($s->stats()['last_error'], 'spool')) {
    if (microtime(true) > $deadline) {
        fail('last_error never named the spool: ' . $s->stats()['last_error']);
    }
    usleep(1000);
}
assert($s->flush(200) === false, 'nothing is durable');
file_put_contents(getenv('TEST_DIR') . '/accepted', (string)$st['accepted']);
echo "OK\n";
