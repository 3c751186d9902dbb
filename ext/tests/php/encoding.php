<?php
// Every value must encode exactly as json_encode() does (Laravel's broadcasters use it).
use Scada\Broadcasting\ScadaBroadcastingService as S;

function same($v, $label) {
    $want = json_encode($v);
    $got = S::encodeJson($v);
    if ($want !== $got) {
        fwrite(STDERR, "mismatch for $label:\n want $want\n  got $got\n");
        exit(1);
    }
}

class Pt implements JsonSerializable { public function __construct(public $x) {} public function jsonSerialize(): mixed { return ['x' => $this->x, 'k' => 'v/w']; } }
class Plain { public $a = 1; protected $b = 2; private $c = 3; public $d = ['é']; }
enum Suit: string { case Hearts = 'H'; }

$fixed = [
    null, true, false, 0, -1, PHP_INT_MAX, PHP_INT_MIN, 0.0, -0.0, 1.5, 20.0, 0.1, 1e20, 1e-7, 1/3, 5e-324, PHP_FLOAT_MAX,
    '', 'plain', 'a/b', "quote\"back\\slash", "ctl\x00\x01\x1f\x7f", "tab\tnl\ncr\r", 'é😀€', "\u{2028}\u{2029}",
    [], [1, 2, 3], ['a' => 1], [1 => 'a', 2 => 'b'], [0 => 'a', 2 => 'b'], ['x' => [], 'y' => ['z' => null]],
    new stdClass, (object)['p' => 1], new Pt(3), new Plain, Suit::Hearts, new DateTimeImmutable('2024-01-02T03:04:05Z'),
    ['id' => 1, 'channel' => 'PLC-1', 'tag' => 'temperature', 'value' => 21.5, 'unit' => 'C', 'quality' => 'good'],
];
foreach ($fixed as $i => $v) { same($v, "fixed #$i"); }

// Arrays with holes (packed arrays after unset) and references.
$holes = [1, 2, 3, 4]; unset($holes[1]); same($holes, 'holes');
$list = [1, 2, 3]; unset($list[2]); same($list, 'list with trailing hole');
$r = 5; $withRef = ['r' => &$r, 'list' => [&$r, 2]]; same($withRef, 'references');
$big = range(0, 999); same($big, 'range');
$assoc = []; for ($i = 0; $i < 500; $i++) { $assoc["k$i"] = $i * 1.25; } same($assoc, 'assoc');

// Random values, deterministic seed.
function utf8(int $cp): string {
    if ($cp >= 0xD800 && $cp <= 0xDFFF) { $cp = 0xFFFD; }
    if ($cp < 0x80) return chr($cp);
    if ($cp < 0x800) return chr(0xC0 | $cp >> 6) . chr(0x80 | $cp & 0x3F);
    if ($cp < 0x10000) return chr(0xE0 | $cp >> 12) . chr(0x80 | $cp >> 6 & 0x3F) . chr(0x80 | $cp & 0x3F);
    return chr(0xF0 | $cp >> 18) . chr(0x80 | $cp >> 12 & 0x3F) . chr(0x80 | $cp >> 6 & 0x3F) . chr(0x80 | $cp & 0x3F);
}
mt_srand(42);
function rnd($depth) {
    switch (mt_rand(0, $depth > 4 ? 5 : 8)) {
        case 0: return null;
        case 1: return (bool)mt_rand(0, 1);
        case 2: return mt_rand(PHP_INT_MIN, PHP_INT_MAX);
        case 3: return (mt_rand() / mt_getrandmax() - 0.5) * 10 ** mt_rand(-30, 30);
        case 4: $s = ''; $n = mt_rand(0, 20); for ($i = 0; $i < $n; $i++) { $s .= utf8(mt_rand(0, 1) ? mt_rand(0, 127) : mt_rand(128, 0x2FFFF)); } return $s;
        case 5: return mt_rand(-1000, 1000) / 8;
        case 6: $a = []; $n = mt_rand(0, 6); for ($i = 0; $i < $n; $i++) { $a[] = rnd($depth + 1); } return $a;
        case 7: $a = []; $n = mt_rand(0, 6); for ($i = 0; $i < $n; $i++) { $a['k' . mt_rand(0, 50)] = rnd($depth + 1); } return $a;
        default: $a = []; $n = mt_rand(0, 6); for ($i = 0; $i < $n; $i++) { $a[mt_rand(0, 10)] = rnd($depth + 1); } return $a;
    }
}
// Under valgrind (about 50x slower) fewer random values: it looks for memory errors, not encodings.
$scale = getenv('TEST_UNDER_VALGRIND') ? 50 : 1;
for ($i = 0; $i < 20000 / $scale; $i++) { $v = rnd(0); if (json_encode($v) !== false) { same($v, "random #$i"); } }
// Floats are where encoders disagree: 200k random bit patterns (all magnitudes).
for ($i = 0; $i < 200000 / $scale; $i++) {
    $f = unpack('e', pack('P', mt_rand() << 32 | mt_rand()))[1];
    if (is_finite($f)) { same($f, sprintf('float bits %016x', unpack('P', pack('e', $f))[1])); }
}
echo "OK\n";
