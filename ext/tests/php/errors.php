<?php
use Scada\Broadcasting\ScadaBroadcastingService as S;
use Scada\Broadcasting\InvalidBroadcastException;

$s = new S();
$cases = [
    'NAN'            => [fn() => $s->broadcastData(NAN), InvalidBroadcastException::class, 'Argument #1 ($data) is NAN'],
    'INF in nested'  => [fn() => $s->broadcastData(['a' => ['b' => [1, INF]]]), InvalidBroadcastException::class, "\$data['a']['b'][1] is INF"],
    'bad UTF-8'      => [fn() => $s->broadcastData(['name' => "ok\xff"]), InvalidBroadcastException::class, "\$data['name'] is not valid UTF-8"],
    'bad UTF-8 key'  => [fn() => $s->broadcastData(["k\xff" => 1]), InvalidBroadcastException::class, 'key that is not valid UTF-8'],
    'resource'       => [fn() => $s->broadcastData(['f' => STDIN]), InvalidBroadcastException::class, "\$data['f'] is a resource"],
    'closure'        => [fn() => $s->broadcastData([fn() => 1]), InvalidBroadcastException::class, '$data[0] is a Closure'],
    'too deep'       => [fn() => $s->broadcastData(array_reduce(range(1, 70), fn($c) => [$c], 1)), InvalidBroadcastException::class, 'nested deeper than 64'],
    'too big'        => [fn() => $s->broadcastData(str_repeat('x', 11000)), InvalidBroadcastException::class, 'over the 10240 byte limit'],
    'channel chars'  => [fn() => $s->broadcastData(1, 'bad channel'), InvalidBroadcastException::class, "Argument #2 (\$channel) is not a valid channel name: contains ' ' at offset 3"],
    'channel long'   => [fn() => $s->broadcastData(1, str_repeat('c', 201)), InvalidBroadcastException::class, '201 bytes long, the limit is 200'],
    'channel empty'  => [fn() => $s->broadcastData(1, ''), InvalidBroadcastException::class, 'must not be empty'],
    'channel type'   => [fn() => $s->broadcastData(1, []), TypeError::class, 'must be of type string, array given'],
    'no channels'    => [fn() => $s->broadcast([], 'e'), InvalidBroadcastException::class, 'must name at least one channel'],
    '101 channels'   => [fn() => $s->broadcast(array_map(fn($i) => "c$i", range(1, 101)), 'e'), InvalidBroadcastException::class, 'at most 100'],
    'channel in list'=> [fn() => $s->broadcast(['ok', 'no way'], 'e'), InvalidBroadcastException::class, 'channel 1 is not a valid channel name'],
    'event empty'    => [fn() => $s->broadcast('c', ''), InvalidBroadcastException::class, 'Argument #2 ($event) is not a valid event name'],
    'event long'     => [fn() => $s->broadcast('c', str_repeat('e', 201)), InvalidBroadcastException::class, 'limit is 200'],
    'socket id'      => [fn() => $s->broadcast('c', 'e', [], 'abc'), InvalidBroadcastException::class, 'Argument #4 ($socketId) is not a valid socket id'],
    'payload type'   => [fn() => $s->broadcast('c', 'e', 'str'), TypeError::class, 'Argument #3 ($payload) must be of type array'],
    'payload NAN'    => [fn() => $s->broadcast('c', 'e', ['v' => NAN]), InvalidBroadcastException::class, "\$payload['v'] is NAN"],
    'batch empty'    => [fn() => $s->broadcastBatchData([]), InvalidBroadcastException::class, 'at least one sample'],
    'batch no value' => [fn() => $s->broadcastBatchData([['channel' => 'a']]), InvalidBroadcastException::class, "\$dataArray[0] has no 'value'"],
    'batch string'   => [fn() => $s->broadcastBatchData([['channel' => 'a', 'value' => 'high']]), InvalidBroadcastException::class, "\$dataArray[0]['value'] must be a number"],
    'batch NAN'      => [fn() => $s->broadcastBatchData(['x' => ['value' => NAN]]), InvalidBroadcastException::class, "\$dataArray['x']['value'] is NAN"],
    'batch item'     => [fn() => $s->broadcastBatchData([5]), InvalidBroadcastException::class, '$dataArray[0] must be an array'],
    'agg NAN'        => [fn() => $s->broadcastAggregatedData(['channel' => 'a', 'value' => NAN]), InvalidBroadcastException::class, "\$data['value'] is NAN"],
    'agg string'     => [fn() => $s->broadcastAggregatedData(['temp' => 'hot']), InvalidBroadcastException::class, "\$data['temp'] must be a number, string given"],
    'agg list item'  => [fn() => $s->broadcastAggregatedData([['value' => 1], 'x']), InvalidBroadcastException::class, '$data[1] must be an array'],
    'agg empty'      => [fn() => $s->broadcastAggregatedData([]), InvalidBroadcastException::class, 'at least one sample'],
    'agg scalar'     => [fn() => $s->broadcastAggregatedData(5), TypeError::class, 'must be of type array, int given'],
    'agg throttle 0' => [fn() => $s->broadcastAggregatedData(['v' => 1], 'c', 0), InvalidBroadcastException::class, 'between 1 and 60000'],
    'agg throttle hi'=> [fn() => $s->broadcastAggregatedData(['v' => 1], 'c', 60001), InvalidBroadcastException::class, 'got 60001'],
    'agg channel'    => [fn() => $s->broadcastAggregatedData(['v' => 1], 'bad channel'), InvalidBroadcastException::class, 'not a valid channel name'],
    'channel int'    => [fn() => $s->broadcastData(1, 123), TypeError::class, 'Argument #2 ($channel) must be of type string, int given'],
    'event int'      => [fn() => $s->broadcast('c', 5), TypeError::class, 'Argument #2 ($event) must be of type string, int given'],
    'throttle string'=> [fn() => $s->broadcastAggregatedData(['v' => 1], 'c', '100'), TypeError::class, 'Argument #3 ($throttleMs) must be of type int, string given'],
    'new exception'  => [fn() => new Scada\Broadcasting\BroadcastException('x'), Error::class, 'Call to private Scada\Broadcasting\BroadcastException::__construct()'],
    'new invalid'    => [fn() => new InvalidBroadcastException('x'), Error::class, 'Call to private Scada\Broadcasting\InvalidBroadcastException::__construct()'],
    'unknown option' => [fn() => new S(['sokcet' => 'x']), InvalidBroadcastException::class, "unknown option 'sokcet'"],
    'option type'    => [fn() => new S(['max_payload_bytes' => 'big']), InvalidBroadcastException::class, "option 'max_payload_bytes' must be an integer"],
    'overflow value' => [fn() => new S(['overflow' => 'maybe']), InvalidBroadcastException::class, "'reject' or 'drop_oldest'"],
];
foreach ($cases as $name => [$call, $class, $fragment]) {
    try {
        $call();
        fwrite(STDERR, "$name: no exception\n"); exit(1);
    } catch (Throwable $e) {
        if (!($e instanceof $class) || !str_contains($e->getMessage(), $fragment)) {
            fwrite(STDERR, "$name: got " . get_class($e) . ': ' . $e->getMessage() . "\n  want $class containing: $fragment\n"); exit(1);
        }
    }
}
assert(is_subclass_of(InvalidBroadcastException::class, InvalidArgumentException::class));
// Numeric strings are accepted as samples (as PHP's arithmetic would), and a custom limit applies.
assert($s->broadcastBatchData([['channel' => 'a', 'value' => ' 4.5e1 '], ['channel' => 7, 'value' => '-3']]));
$small = new S(['max_payload_bytes' => 100]);
try { $small->broadcastData(str_repeat('y', 200)); exit(1); } catch (InvalidBroadcastException $e) { assert(str_contains($e->getMessage(), 'over the 100 byte limit')); }
// What reflection (and so the stubs) declares is what the calls accept: `?T $x = null` takes null as "not given".
$param = fn(string $m, int $i) => (new ReflectionMethod(S::class, $m))->getParameters()[$i];
foreach ([['broadcastData', 1, '?string'], ['broadcastAggregatedData', 0, 'array'], ['broadcastAggregatedData', 2, '?int'],
          ['broadcast', 1, 'string'], ['broadcast', 2, '?array'], ['broadcast', 3, '?string']] as [$m, $i, $type]) {
    assert((string)$param($m, $i)->getType() === $type, "$m #$i: " . $param($m, $i)->getType());
}
assert(!(new ReflectionMethod(Scada\Broadcasting\BroadcastException::class, '__construct'))->isPublic());
assert($s->broadcastData(1, null));
assert($s->broadcastBatchData([['channel' => 'a', 'value' => 1]], null));
assert($s->broadcastAggregatedData(['v' => 1], null, null));
assert($s->broadcast('c', 'e', null, null));
// Refused calls are counted; accepted ones too.
$st = $s->stats();
assert($st['invalid'] >= 28, "invalid={$st['invalid']}");
assert($st['accepted'] === 5, "accepted={$st['accepted']}"); // aggregated samples go their own way
echo "OK\n";
