<?php
// jsonSerialize() may broadcast (re-entering the extension) or throw; neither
// corrupts the outer event, and a thrown exception reaches the caller unchanged.
use Scada\Broadcasting\ScadaBroadcastingService as S;

$s = new S();
class Nested implements JsonSerializable {
    public function __construct(private S $s) {}
    public function jsonSerialize(): mixed { $this->s->broadcastData(['inner' => true], 'inner'); return ['nested' => 'yes']; }
}
class Boom implements JsonSerializable {
    public function jsonSerialize(): mixed { throw new DomainException('boom from jsonSerialize'); }
}
assert($s->broadcastData(['outer' => new Nested($s)], 'outer') === true);
try {
    $s->broadcastData(['x' => new Boom()]);
    exit(1);
} catch (DomainException $e) {
    assert($e->getMessage() === 'boom from jsonSerialize');
}
assert($s->flush());
$files = glob(getenv('SCADA_SPOOL_DIR') . '/*.spool');
$data = file_get_contents($files[0]);
assert(str_contains($data, '{"data":{"outer":{"nested":"yes"}}'), 'outer payload intact');
assert(str_contains($data, '{"data":{"inner":true}'));
assert($s->stats()['accepted'] === 2);
echo "OK\n";
