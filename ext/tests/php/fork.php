<?php
// After pcntl_fork both processes keep broadcasting through their own
// transport (new origin, own spool file); what the parent queued before the
// fork is never written by the child.
use Scada\Broadcasting\ScadaBroadcastingService as S;

$s = new S(['linger_us' => 200000]); // hold events in the parent's buffer across the fork
for ($i = 0; $i < 100; $i++) { $s->broadcastData(['before' => $i]); }
$parentOrigin = $s->stats()['origin'];
$pid = pcntl_fork();
if ($pid === 0) {
    $st = $s->stats();
    if ($st['origin'] === $parentOrigin || $st['accepted'] !== 0) { fwrite(STDERR, "child inherited state\n"); exit(3); }
    for ($i = 0; $i < 50; $i++) { if (!$s->broadcastData(['child' => $i])) exit(4); }
    if (!$s->flush()) exit(5);
    $st = $s->stats();
    exit($st['spooled'] === 50 ? 0 : 6);
}
for ($i = 0; $i < 30; $i++) { $s->broadcastData(['after' => $i]); }
assert($s->flush() === true);
pcntl_waitpid($pid, $status);
assert(pcntl_wexitstatus($status) === 0, 'child exit ' . pcntl_wexitstatus($status));
$st = $s->stats();
assert($st['origin'] === $parentOrigin);
assert($st['spooled'] === 130, "parent spooled {$st['spooled']}");
$files = glob(getenv('SCADA_SPOOL_DIR') . '/*.spool');
assert(count($files) === 2, json_encode($files));
$all = implode('', array_map('file_get_contents', $files));
assert(substr_count($all, '"before"') === 100, 'pre-fork events written exactly once');
assert(substr_count($all, '"child"') === 50 && substr_count($all, '"after"') === 30);
echo "OK\n";
