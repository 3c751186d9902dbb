<?php
// A plant for the dashboard demo: 36 tags in 5 areas (temperatures, pressures,
// flows, levels, motor currents, analyser values) with daily cycles compressed
// into --day-seconds, slow mean-reverting drift and noise; tank levels that fill
// and drain between pump switch points; motors that start with an inrush
// current. Telemetry goes out through the extension's broadcastAggregatedData
// (the sidecar turns it into one window per --window-ms for all producers);
// the tag list (labels, units, limits) as `scada.tags` on the same channel at
// start and every 10 s; threshold crossings (with a deadband) as `scada.alarm`
// on --alarms.
//
//   php -d extension=target/release/libscada_broadcast.so tests/demo/plant.php \
//     [--rate=3000] [--seconds=0] [--channel=plant-live] [--alarms=alarms-plant]
//     [--window-ms=200] [--day-seconds=600] [--seed=1]
// --seconds=0 runs until SIGINT/SIGTERM; at the end it prints what it sent as JSON.

const USAGE = 'usage: plant.php [--rate=N samples/s] [--seconds=N (0 = until stopped)] [--channel=NAME] [--alarms=NAME] [--window-ms=N] [--day-seconds=N] [--seed=N]';

function options(array $argv): array
{
    $o = ['rate' => 3000, 'seconds' => 0.0, 'channel' => 'plant-live', 'alarms' => 'alarms-plant', 'window-ms' => 200, 'day-seconds' => 600.0, 'seed' => 1];
    foreach (array_slice($argv, 1) as $arg) {
        if (!preg_match('/^--([a-z-]+)=(.*)$/', $arg, $m) || !array_key_exists($m[1], $o)) {
            fail("unknown argument $arg\n" . USAGE);
        }
        $o[$m[1]] = $m[2];
    }
    foreach (['rate' => [1, 1000000], 'window-ms' => [1, 60000], 'seed' => [0, PHP_INT_MAX]] as $k => [$min, $max]) {
        if (filter_var($o[$k], FILTER_VALIDATE_INT, ['options' => ['min_range' => $min, 'max_range' => $max]]) === false) {
            fail("--$k must be an integer from $min to $max, got {$o[$k]}");
        }
        $o[$k] = (int) $o[$k];
    }
    foreach (['seconds' => 0, 'day-seconds' => 1] as $k => $min) {
        if (!is_numeric($o[$k]) || (float) $o[$k] < $min) {
            fail("--$k must be a number of at least $min, got {$o[$k]}");
        }
        $o[$k] = (float) $o[$k];
    }

    return $o;
}

function fail(string $message): never
{
    fwrite(STDERR, "plant.php: $message\n");
    exit(2);
}

/** Standard normal noise (Box-Muller) from the seeded generator. */
function gauss(): float
{
    $u = max(mt_rand() / mt_getrandmax(), 1e-12);
    $v = mt_rand() / mt_getrandmax();

    return sqrt(-2 * log($u)) * cos(2 * M_PI * $v);
}

/**
 * The tag list. kind: cycle (base + daily swing + drift + noise), level (fills
 * at `in` %/s until the pump starts at `start`, drains at `out` %/s until it
 * stops at `stop`), motor (follows a level's pump: off 0 A, inrush then load).
 */
function tags(): array
{
    $t = [];
    $add = function (string $tag, string $area, string $label, string $unit, array $shape, ?float $lo, ?float $hi) use (&$t) {
        $t[$tag] = ['tag' => $tag, 'area' => $area, 'label' => $label, 'unit' => $unit, 'lo' => $lo, 'hi' => $hi] + $shape;
    };
    $cycle = fn (float $base, float $swing, float $drift, float $noise, float $phase = 0.0) => ['kind' => 'cycle', 'base' => $base, 'swing' => $swing, 'drift' => $drift, 'noise' => $noise, 'phase' => $phase];
    // Reactor: the daily load swing brings TT-101 close to its limit; drift pushes it over now and then.
    $add('TT-101', 'Reactor', 'Reactor temperature', '°C', $cycle(168, 9, 4, 0.4), 120, 180);
    $add('TT-102', 'Reactor', 'Jacket inlet temperature', '°C', $cycle(92, 6, 2, 0.3, 0.4), 60, 110);
    $add('TT-103', 'Reactor', 'Jacket outlet temperature', '°C', $cycle(104, 7, 2, 0.3, 0.5), 60, 125);
    $add('PT-101', 'Reactor', 'Reactor pressure', 'bar', $cycle(12.4, 0.8, 0.4, 0.05, 0.1), 8, 14.5);
    $add('FT-101', 'Reactor', 'Feed flow', 'm³/h', $cycle(42, 6, 2, 0.8), 20, 60);
    $add('AT-101', 'Reactor', 'Reactor pH', 'pH', $cycle(7.1, 0.15, 0.1, 0.02, 1.2), 6.5, 7.6);
    $add('ST-101', 'Reactor', 'Agitator speed', 'rpm', $cycle(145, 5, 2, 1.5), 100, 180);
    // Boiler and steam.
    $add('PT-201', 'Boiler', 'Steam header pressure', 'bar', $cycle(10.2, 0.9, 0.5, 0.08, 2.0), 8.5, 12);
    $add('TT-201', 'Boiler', 'Steam temperature', '°C', $cycle(184, 4, 2, 0.5, 2.0), 170, 200);
    $add('FT-201', 'Boiler', 'Steam flow', 't/h', $cycle(18, 5, 1.5, 0.4, 2.1), 5, 26);
    $add('LT-201', 'Boiler', 'Drum level', '%', $cycle(50, 4, 3, 0.8, 0.7), 30, 70);
    $add('TT-202', 'Boiler', 'Flue gas temperature', '°C', $cycle(212, 15, 5, 1.2, 2.2), 150, 260);
    $add('AT-201', 'Boiler', 'Flue gas O₂', '%', $cycle(3.4, 0.6, 0.4, 0.08, 3.0), 1.5, 6);
    $add('FT-202', 'Boiler', 'Gas flow', 'Nm³/h', $cycle(1350, 300, 80, 12, 2.1), 400, 2000);
    // Tank farm: three tanks filling and draining.
    $add('LT-301', 'Tank farm', 'Tank 1 level', '%', ['kind' => 'level', 'in' => 0.55, 'out' => 1.1, 'start' => 88, 'stop' => 18, 'initial' => 40], 10, 92);
    $add('LT-302', 'Tank farm', 'Tank 2 level', '%', ['kind' => 'level', 'in' => 0.35, 'out' => 0.9, 'start' => 85, 'stop' => 25, 'initial' => 70], 10, 92);
    $add('LT-303', 'Tank farm', 'Tank 3 level', '%', ['kind' => 'level', 'in' => 0.8, 'out' => 1.4, 'start' => 94, 'stop' => 12, 'initial' => 55], 10, 92);
    $add('TT-301', 'Tank farm', 'Tank 1 temperature', '°C', $cycle(24, 3, 1, 0.1, 4.0), 5, 40);
    $add('TT-302', 'Tank farm', 'Tank 2 temperature', '°C', $cycle(27, 3, 1, 0.1, 4.1), 5, 40);
    $add('PT-301', 'Tank farm', 'Transfer line pressure', 'bar', $cycle(4.2, 0.4, 0.3, 0.05, 1.0), 2, 6);
    $add('FT-301', 'Tank farm', 'Transfer flow', 'm³/h', $cycle(65, 12, 4, 1.5, 1.1), 20, 100);
    // Pumps and motors (their current follows the tanks' pumps and the process load).
    $add('IT-401', 'Motors', 'P-301 pump current', 'A', ['kind' => 'motor', 'level' => 'LT-301', 'load' => 38, 'noise' => 0.6], null, 60);
    $add('IT-402', 'Motors', 'P-302 pump current', 'A', ['kind' => 'motor', 'level' => 'LT-302', 'load' => 24, 'noise' => 0.4], null, 40);
    $add('IT-403', 'Motors', 'P-303 pump current', 'A', ['kind' => 'motor', 'level' => 'LT-303', 'load' => 52, 'noise' => 0.8], null, 80);
    $add('IT-404', 'Motors', 'Agitator motor current', 'A', $cycle(61, 5, 2, 0.7, 0.2), 20, 75);
    $add('IT-405', 'Motors', 'Feed pump current', 'A', $cycle(17, 2, 1, 0.3, 0.1), 5, 25);
    $add('VT-401', 'Motors', 'Agitator vibration', 'mm/s', $cycle(2.1, 0.4, 0.6, 0.15, 0.3), null, 4.5);
    $add('TT-401', 'Motors', 'Agitator bearing temperature', '°C', $cycle(58, 6, 2, 0.2, 0.6), null, 80);
    $add('JT-401', 'Motors', 'Plant power', 'kW', $cycle(820, 140, 30, 8, 0.2), 200, 1100);
    // Cooling water.
    $add('TT-501', 'Cooling', 'Cooling water supply', '°C', $cycle(21, 4, 1, 0.15, 3.6), 10, 28);
    $add('TT-502', 'Cooling', 'Cooling water return', '°C', $cycle(29, 5, 1.5, 0.2, 3.7), 10, 38);
    $add('FT-501', 'Cooling', 'Cooling water flow', 'm³/h', $cycle(310, 30, 10, 3, 0.3), 200, 400);
    $add('PT-501', 'Cooling', 'Cooling water pressure', 'bar', $cycle(3.6, 0.2, 0.15, 0.03, 0.3), 2.5, 4.5);
    $add('AT-501', 'Cooling', 'Conductivity', 'µS/cm', $cycle(640, 40, 30, 4, 5.0), null, 800);
    $add('ST-501', 'Cooling', 'Tower fan speed', '%', $cycle(62, 18, 5, 0.8, 3.6), null, null);
    $add('TT-503', 'Cooling', 'Ambient temperature', '°C', $cycle(27, 5, 1, 0.1, 3.5), null, null);

    return $t;
}

/** The next value of a tag at time $t (seconds since start); keeps its state (drift, level, pump). */
function sample(array &$tag, float $t, float $day, array $tags): float
{
    $dt = $t - ($tag['at'] ?? $t);
    $tag['at'] = $t;
    switch ($tag['kind']) {
        case 'level':
            $tag['level'] ??= $tag['initial'];
            $tag['running'] ??= false;
            $tag['level'] += ($tag['running'] ? -$tag['out'] : $tag['in']) * $dt * 600 / $day;
            if (!$tag['running'] && $tag['level'] >= $tag['start']) {
                $tag['running'] = true;
                $tag['since'] = $t;
            } elseif ($tag['running'] && $tag['level'] <= $tag['stop']) {
                $tag['running'] = false;
                $tag['since'] = $t;
            }

            return $tag['level'] + 0.15 * gauss();
        case 'motor':
            $pump = $tags[$tag['level']];
            if (!($pump['running'] ?? false)) {
                return max(0.0, 0.05 * gauss());
            }
            $on = $t - ($pump['since'] ?? $t);
            $inrush = $on < 1.5 ? 5.5 * exp(-$on * 3) : 0.0; // a direct-on-line start: 6x, falling off in about a second

            return $tag['load'] * (1 + $inrush) + $tag['noise'] * gauss();
        default:
            // Drift: a mean-reverting random walk (Ornstein-Uhlenbeck), so values wander but stay plausible.
            $tag['walk'] ??= 0.0;
            $tag['walk'] += -$tag['walk'] * min(1.0, $dt / 60) + $tag['drift_sigma'] * sqrt(max($dt, 0)) * gauss();
            $cycle = sin(2 * M_PI * $t / $day + $tag['phase']) + 0.25 * sin(6 * M_PI * $t / $day + 2 * $tag['phase']);

            return $tag['base'] + $tag['swing'] * $cycle + $tag['walk'] + $tag['noise'] * gauss();
    }
}

/** high / low / normal for a value, with a deadband of 1 % of the limit's size, so noise does not chatter. */
function alarmState(array $tag, float $v, string $was): string
{
    $band = fn (?float $limit) => $limit === null ? 0 : max(abs($limit) * 0.01, 1e-9);
    if ($tag['hi'] !== null && ($v > $tag['hi'] || ($was === 'high' && $v > $tag['hi'] - $band($tag['hi'])))) {
        return 'high';
    }
    if ($tag['lo'] !== null && ($v < $tag['lo'] || ($was === 'low' && $v < $tag['lo'] + $band($tag['lo'])))) {
        return 'low';
    }

    return 'normal';
}

if (!extension_loaded('scada_broadcast')) {
    fwrite(STDERR, "plant.php: the scada_broadcast extension is not loaded (php -d extension=target/release/libscada_broadcast.so ...)\n");
    exit(1);
}
$o = options($argv);
mt_srand($o['seed']);
$tags = tags();
foreach ($tags as &$tag) {
    if ($tag['kind'] === 'cycle') {
        $tag['drift_sigma'] = $tag['drift'] / sqrt(30); // the walk's typical size over half a minute is `drift`
    }
}
unset($tag);
$names = array_keys($tags);
$list = array_values(array_map(fn ($t) => array_intersect_key($t, array_flip(['tag', 'label', 'unit', 'area', 'lo', 'hi'])), $tags));

$s = new Scada\Broadcasting\ScadaBroadcastingService();
$stop = false;
if (function_exists('pcntl_async_signals')) {
    pcntl_async_signals(true);
    pcntl_signal(SIGINT, function () use (&$stop) { $stop = true; });
    pcntl_signal(SIGTERM, function () use (&$stop) { $stop = true; });
}
$sent = $refused = $alarmsSent = 0;
$states = [];
$t0 = microtime(true);
$lastTags = -INF;
$lastReport = $t0;
while (!$stop && ($o['seconds'] <= 0 || microtime(true) - $t0 < $o['seconds'])) {
    $now = microtime(true);
    $t = $now - $t0;
    if ($t - $lastTags >= 10) {
        $s->broadcast($o['channel'], 'scada.tags', ['tags' => $list]);
        $lastTags = $t;
    }
    $due = (int) ($t * $o['rate']);
    while ($sent + $refused < $due) {
        $name = $names[($sent + $refused) % count($names)];
        $v = round(sample($tags[$name], $t, $o['day-seconds'], $tags), 4);
        $shown = round($v, abs($v) >= 100 ? 1 : 2); // for people, in alarm messages
        $ok = $s->broadcastAggregatedData(['channel' => $name, 'value' => $v, 'unit' => $tags[$name]['unit']], $o['channel'], $o['window-ms']);
        $ok ? $sent++ : $refused++;
        $was = $states[$name] ?? 'normal';
        $state = alarmState($tags[$name], $v, $was);
        // A motor's inrush current is expected: its alarm waits until the start is over, as a real start inhibit does.
        $starting = $tags[$name]['kind'] === 'motor' && $t - ($tags[$tags[$name]['level']]['since'] ?? -INF) < 2.0;
        if ($state !== $was && !$starting) {
            $states[$name] = $state;
            $tag = $tags[$name];
            $limit = $state === 'low' ? $tag['lo'] : $tag['hi'];
            $message = match ($state) {
                'high' => sprintf('%s high: %s %s > %s %s', $tag['label'], $shown, $tag['unit'], $tag['hi'], $tag['unit']),
                'low' => sprintf('%s low: %s %s < %s %s', $tag['label'], $shown, $tag['unit'], $tag['lo'], $tag['unit']),
                'normal' => sprintf('%s back to normal: %s %s', $tag['label'], $shown, $tag['unit']),
            };
            $s->broadcast($o['alarms'], 'scada.alarm', ['tag' => $name, 'state' => $state, 'value' => $v, 'limit' => $state === 'normal' ? null : $limit,
                'unit' => $tag['unit'], 'message' => $message, 'at' => gmdate('Y-m-d\TH:i:s') . sprintf('.%06dZ', (int) (fmod($now, 1) * 1e6))]);
            $alarmsSent++;
        }
    }
    if ($now - $lastReport >= 5) {
        fwrite(STDERR, sprintf("plant.php: %d samples (%.0f/s), %d refused, %d alarm events\n", $sent, $sent / max($t, 1e-3), $refused, $alarmsSent));
        $lastReport = $now;
    }
    usleep(10000);
}
$flushed = $s->flush();
echo json_encode(['samples' => $sent, 'refused' => $refused, 'alarms' => $alarmsSent, 'tags' => count($tags), 'seconds' => round(microtime(true) - $t0, 3), 'flushed' => $flushed]), "\n";
exit($flushed ? 0 : 1);
