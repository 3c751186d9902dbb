<?php
// 1,000,000 calls with random PHP values: invalid UTF-8, huge and deeply
// nested arrays, NaN/INF, objects, closures, resources, bad names. Nothing
// may crash; every refusal must be a clear exception of an expected class;
// memory must stay bounded. Output: one JSON line.
//   php -d extension=... fuzz.php [CALLS] [SEED]
use Scada\Broadcasting\PusherSigner;
use Scada\Broadcasting\ScadaBroadcastingService as S;

$calls = (int)($argv[1] ?? 1000000);
mt_srand((int)($argv[2] ?? 12345));

class Throws implements JsonSerializable { public function jsonSerialize(): mixed { throw new DomainException('fuzz: jsonSerialize throws'); } }
class Nanny implements JsonSerializable { public function jsonSerialize(): mixed { return ['x' => NAN]; } }
enum Level: string { case High = 'high'; }

function rss_kb(): int { preg_match('/VmRSS:\s+(\d+)/', (string)file_get_contents('/proc/self/status'), $m); return (int)$m[1]; }
function rbytes(int $n): string { $s = ''; for ($i = 0; $i < $n; $i++) { $s .= chr(mt_rand(0, 255)); } return $s; }
function rstring(): string {
    switch (mt_rand(0, 6)) {
        case 0: return rbytes(mt_rand(0, 12));                          // often invalid UTF-8
        case 1: return str_repeat('x', mt_rand(0, 3) === 0 ? 20000 : 50); // sometimes over the size limit
        case 2: return "é😀/\"\\\n\t";
        case 3: return "\xc3\x28";
        default: return 'v' . mt_rand(0, 1000);
    }
}
function rvalue(int $d) {
    switch (mt_rand(0, $d > 6 ? 7 : 14)) {
        case 0: return null;
        case 1: return (bool)mt_rand(0, 1);
        case 2: return mt_rand(PHP_INT_MIN, PHP_INT_MAX);
        case 3: return [NAN, INF, -INF, 0.1, -0.0, 1e300, PHP_FLOAT_EPSILON][mt_rand(0, 6)];
        case 4: case 5: return rstring();
        case 6: return mt_rand(-100000, 100000) / 7;
        case 7: return [new stdClass, new DateTimeImmutable('@0'), fn() => 1, new Throws, new Nanny, Level::High, STDIN, (object)['a' => NAN]][mt_rand(0, 7)];
        case 8: case 9: $a = []; for ($i = 0, $n = mt_rand(0, 6); $i < $n; $i++) { $a[] = rvalue($d + 1); } return $a;
        case 10: case 11: $a = []; for ($i = 0, $n = mt_rand(0, 6); $i < $n; $i++) { $a[mt_rand(0, 1) ? rstring() : mt_rand(-5, 5)] = rvalue($d + 1); } return $a;
        case 12: $a = 1; for ($i = 0, $n = mt_rand(50, 100); $i < $n; $i++) { $a = [$a]; } return $a; // too deep
        case 13: $a = ['k' => 1]; $a['self'] = &$a; return $a;                                         // a cycle
        default: return mt_rand(0, 2000) === 0 ? range(1, 50000) : ['channel' => 'PLC-' . mt_rand(0, 3), 'value' => mt_rand(0, 100)]; // huge, or a sample
    }
}
function rchannel() { return [fn() => 'scada-' . mt_rand(0, 9), fn() => rstring(), fn() => str_repeat('c', mt_rand(190, 210)), fn() => '', fn() => ['x'], fn() => 'private-ok.1'][mt_rand(0, 5)](); }

$s = new S();
$signer = new PusherSigner('key', 'secret');
$expected = [Scada\Broadcasting\InvalidBroadcastException::class, TypeError::class, DomainException::class];
$byClass = [];
$unexpected = [];
$empty = 0;
$ok = 0;
$rss = ['start' => rss_kb()];
$t0 = microtime(true);
for ($i = 0; $i < $calls; $i++) {
    try {
        switch (mt_rand(0, 6)) {
            case 0: case 1: $s->broadcastData(rvalue(0), rchannel()); break;
            case 2: $s->broadcast(mt_rand(0, 3) ? rchannel() : [rchannel(), rchannel()], mt_rand(0, 9) ? 'ev.' . mt_rand(0, 9) : rstring(), mt_rand(0, 5) ? (array)rvalue(1) : rvalue(0), mt_rand(0, 3) ? null : (mt_rand(0, 1) ? '12.34' : rstring())); break;
            case 3: $s->broadcastBatchData(mt_rand(0, 3) ? [rvalue(1), ['channel' => 'a', 'value' => mt_rand(0, 9)]] : rvalue(0), rchannel()); break;
            case 4: $s->broadcastAggregatedData(mt_rand(0, 2) ? ['channel' => 'PLC-1', 'value' => rvalue(3)] : rvalue(0), rchannel(), mt_rand(0, 5) ? 100 : mt_rand(-5, 70000)); break;
            case 5: S::encodeJson(rvalue(0)); break;
            default: $signer->authorizeChannel(mt_rand(0, 1) ? '1.2' : rstring(), rchannel(), mt_rand(0, 1) ? null : ['user_id' => rvalue(2), 'user_info' => rvalue(1)]);
        }
        $ok++;
    } catch (Throwable $e) {
        $class = get_class($e);
        $byClass[$class] = ($byClass[$class] ?? 0) + 1;
        if (!in_array($class, $expected, true)) {
            $unexpected[$class . ': ' . substr(preg_replace('/[^\x20-\x7e]/', '?', $e->getMessage()), 0, 90)] = true;
        }
        if ($e->getMessage() === '') {
            $empty++;
        }
    }
    if ($i === 100000) {
        $rss['after_100k'] = rss_kb();
    }
}
$rss['end'] = rss_kb();
$s->flush(10000);
ksort($byClass);
echo json_encode(['calls' => $calls, 'accepted_or_ok' => $ok, 'exceptions' => $byClass, 'unexpected' => array_slice(array_keys($unexpected), 0, 20),
    'empty_messages' => $empty, 'rss_kb' => $rss, 'seconds' => round(microtime(true) - $t0, 2), 'stats' => $s->stats()]), "\n";
