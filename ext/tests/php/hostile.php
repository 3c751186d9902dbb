<?php
// User code that runs in the middle of the encoder's walk (jsonSerialize,
// destructors) and changes the data being walked: grows, shrinks, replaces or
// unsets arrays reached through references, globals and statics, frees the
// object itself, re-enters the extension, throws. Every case must end with a
// clear exception or with the payload as it was when the call started; under
// valgrind (ext/tests/php.rs runs every script there too) with no invalid
// read or write.
require __DIR__ . '/lib.php';

use Scada\Broadcasting\ScadaBroadcastingService as S;
use Scada\Broadcasting\PusherSigner;

$s = new S(['overflow_rules' => 'hostile-*=reject']);

/** Runs `$mutate` the first time it is serialized. */
final class Hook implements JsonSerializable
{
    private bool $ran = false;
    public function __construct(private Closure $mutate, private mixed $value = 'hook') {}
    public function jsonSerialize(): mixed
    {
        if (!$this->ran) {
            $this->ran = true;
            ($this->mutate)();
        }
        return $this->value;
    }
}

/** Runs `$onDestroy` when destroyed. */
final class Dtor
{
    public function __construct(private Closure $onDestroy) {}
    public function __destruct() { ($this->onDestroy)(); }
}

final class Holder { public static array $data = []; }

function static_list(): array
{
    static $list = null;
    $list ??= [new Hook(function () use (&$list) { for ($i = 0; $i < 500; $i++) { $list[] = "grown-$i"; } }), 'a', 'b'];
    return [&$list];
}

function check(string $label, mixed $data, string $want): void
{
    $got = S::encodeJson($data);
    if ($got !== $want) {
        fail("$label:\n want $want\n  got $got");
    }
}

// 1. Grow a packed array, reached through a reference, from inside its walk:
//    the table is reallocated while the encoder is still reading it.
$arr = [new Hook(function () use (&$arr) { for ($i = 0; $i < 1000; $i++) { $arr[] = str_repeat('x', 16) . $i; } }), 1, 2, 3];
$data = ['list' => &$arr];
check('grow packed via reference', $data, '{"list":["hook",1,2,3]}');
assert(count($arr) === 1004, 'the user still sees their own change');

// 2. The same with a hash (string keys).
$map = ['h' => new Hook(function () use (&$map) { for ($i = 0; $i < 1000; $i++) { $map["k$i"] = $i; } }), 'a' => 1, 'b' => 2];
$data = ['map' => &$map];
check('grow hash via reference', $data, '{"map":{"h":"hook","a":1,"b":2}}');

// 3. Unset and replace entries, then replace the whole array (frees it).
$arr = [new Hook(function () use (&$arr) { unset($arr[1], $arr[2]); $arr[3] = 'changed'; }), 'one', 'two', 'three'];
$data = [&$arr];
check('unset entries via reference', $data, '[["hook","one","two","three"]]');
$arr = [new Hook(function () use (&$arr) { $arr = 'replaced'; }), str_repeat('y', 20), ['deep' => str_repeat('z', 20)]];
$data = ['r' => &$arr];
check('replace the array via reference', $data, '{"r":["hook","yyyyyyyyyyyyyyyyyyyy",{"deep":"zzzzzzzzzzzzzzzzzzzz"}]}');
assert($arr === 'replaced');

// 4. Through a global and a static property.
$GLOBALS['g'] = [new Hook(function () { for ($i = 0; $i < 1000; $i++) { $GLOBALS['g'][] = $i; } $GLOBALS['g'] = null; }), 'g1'];
$data = ['g' => &$GLOBALS['g']];
check('grow then free a global', $data, '{"g":["hook","g1"]}');
Holder::$data = [new Hook(function () { for ($i = 0; $i < 1000; $i++) { Holder::$data["s$i"] = $i; } }), 's1'];
$data = [&Holder::$data];
check('grow a static property', $data, '[["hook","s1"]]');

// 5. A function's static variable, returned by reference.
check('grow a static variable', static_list(), '[["hook","a","b"]]');

// 6. jsonSerialize frees the object being serialized and the array holding it.
$obj = new Hook(function () use (&$obj, &$holder) { $obj = null; $holder = null; }, ['self' => 'gone']);
$holder = ['o' => &$obj, 'after' => str_repeat('w', 24)];
$data = ['h' => &$holder];
check('free the object and its array', $data, '{"h":{"o":{"self":"gone"},"after":"wwwwwwwwwwwwwwwwwwwwwwww"}}');

// 7. A destructor runs mid-walk (the last reference to an object goes away
//    inside jsonSerialize) and grows the array being walked.
$victim = new Dtor(function () use (&$arr) { for ($i = 0; $i < 1000; $i++) { $arr[] = $i; } });
$arr = [new Hook(function () use (&$victim) { $victim = null; }), 'x', 'y'];
$data = [&$arr];
check('destructor grows the array', $data, '[["hook","x","y"]]');
assert(count($arr) === 1003);

// 8. Our reference is the last one when the walk ends: releasing it destroys
//    the array, whose destructors run (and may throw) after the walk.
$destroyed = 0;
$arr = [new Hook(function () use (&$arr) { $arr = null; }), new Dtor(function () use (&$destroyed) { $destroyed++; })];
$data = [&$arr];
check('last reference released after the walk', $data, '[["hook",{}]]');
assert($destroyed === 1, "destructor ran $destroyed times");
$arr = [new Hook(function () use (&$arr) { $arr = null; }), new Dtor(function () { throw new LogicException('thrown by a destructor'); })];
$data = ['d' => &$arr];
$before = $s->stats()['accepted'];
expect_throw('destructor throws after the walk', fn () => $s->broadcastData($data, 'hostile-dtor'), LogicException::class, 'thrown by a destructor');
assert($s->stats()['accepted'] === $before, 'nothing is sent when user code threw');

// 9. Recursion through references and through jsonSerialize.
$a = ['x' => 1];
$a['self'] = &$a;
expect_throw('recursive array', fn () => S::encodeJson($a), Scada\Broadcasting\InvalidBroadcastException::class, 'nested deeper than 64');
expect_throw('recursive broadcast', fn () => $s->broadcastData($a), Scada\Broadcasting\InvalidBroadcastException::class, 'nested deeper than 64');
unset($a['self']);
final class Loop implements JsonSerializable { public function jsonSerialize(): mixed { return ['again' => $this]; } }
expect_throw('jsonSerialize returns itself', fn () => S::encodeJson(['l' => new Loop()]), Scada\Broadcasting\InvalidBroadcastException::class, 'json_encode() refused');

// 10. Re-entrant broadcasts of the very array being walked, from jsonSerialize.
$shared = ['n' => 1];
$shared['hook'] = new Hook(function () use ($s, &$shared) {
    $shared['n'] = 2;
    unset($shared['hook']); // json_encode refuses to serialize an object inside its own jsonSerialize
    $s->broadcastData($shared, 'hostile-inner');
});
$shared['tail'] = 'end';
$data = ['s' => &$shared];
assert($s->broadcastData($data, 'hostile-outer') === true);

// 11. Exceptions thrown mid-walk leave nothing half-sent.
$arr = [new Hook(function () use (&$arr) { $arr[] = 'more'; throw new DomainException('boom mid-walk'); }), 'later'];
$data = [&$arr];
$before = $s->stats()['accepted'];
expect_throw('throw mid-walk', fn () => $s->broadcastData($data, 'hostile-throw'), DomainException::class, 'boom mid-walk');
assert($s->stats()['accepted'] === $before);

// 12. Channel names reached through references change while the payload
//     encodes (the overflow rules read them afterwards).
$hex = bin2hex(random_bytes(8));
$name = "hostile-$hex"; // a string of its own (not interned), freed when replaced
$original = 'hostile-' . $hex;
$channels = [&$name, 'hostile-second'];
$payload = ['o' => new Hook(function () use (&$name, &$channels) { $name = str_repeat('q', 64); $channels = null; })];
assert($s->broadcast($channels, 'renamed', $payload) === true);

// 13. Hooks the extension must never call: __toString, __serialize, __get.
final class Sneaky implements Stringable
{
    public static int $touched = 0;
    public function __toString(): string { self::$touched++; return 'sneaky'; }
    public function __serialize(): array { self::$touched++; return []; }
    public function __get($n) { self::$touched++; return 1; }
}
expect_throw('Stringable channel', fn () => $s->broadcastData(1, new Sneaky()), TypeError::class, 'must be of type string, Sneaky given');
expect_throw('Stringable event', fn () => $s->broadcast('c', new Sneaky()), TypeError::class, 'must be of type string');
expect_throw('Stringable sample', fn () => $s->broadcastBatchData([['channel' => new Sneaky(), 'value' => 1]]), Scada\Broadcasting\InvalidBroadcastException::class, "must be a string or int, Sneaky given");
expect_throw('Stringable value', fn () => $s->broadcastAggregatedData(['t' => new Sneaky()]), Scada\Broadcasting\InvalidBroadcastException::class, 'must be a number, Sneaky given');
assert(Sneaky::$touched === 0, 'no magic method was called');

// 14. Samples and signer data reached through references.
$samples = [['channel' => 'a', 'value' => 1], ['channel' => 'b', 'value' => 2]];
$batch = [&$samples[0], &$samples[1]];
assert($s->broadcastBatchData($batch) === true);
assert($s->broadcastAggregatedData($batch, 'hostile-agg') === true);
$info = ['name' => 'Ana', 'hook' => null];
$presence = ['user_id' => 7, 'user_info' => &$info];
$info['hook'] = new Hook(function () use (&$info) { for ($i = 0; $i < 1000; $i++) { $info["x$i"] = $i; } $info = null; }, 'h');
$signer = new PusherSigner('key', 'secret');
$auth = json_decode($signer->authorizeChannel('1.2', 'presence-room', $presence), true);
assert($auth['channel_data'] === '{"user_id":7,"user_info":{"name":"Ana","hook":"h"}}', $auth['channel_data']);

// What was sent is what the data was when each call started.
assert($s->flush());
$events = [];
foreach (spooled_frames() as $f) {
    if ($f['kind'] === 'event') {
        $events[] = [implode(',', $f['channels']), $f['event'], json_decode($f['payload'], true)['data'] ?? null];
    }
}
$byChannel = [];
foreach ($events as [$ch, $ev, $d]) { $byChannel[$ch][] = $d; }
assert($byChannel['hostile-inner'] === [['n' => 2, 'tail' => 'end']], json_encode($byChannel['hostile-inner'] ?? null));
assert($byChannel['hostile-outer'] === [['s' => ['n' => 1, 'hook' => 'hook', 'tail' => 'end']]], json_encode($byChannel['hostile-outer'] ?? null));
assert(isset($byChannel["$original,hostile-second"]), 'channels as they were at the call: ' . json_encode(array_keys($byChannel)));
assert(!isset($byChannel['hostile-dtor']) && !isset($byChannel['hostile-throw']));
echo "OK\n";
