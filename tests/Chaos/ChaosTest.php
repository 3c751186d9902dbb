<?php

namespace Scada\Broadcasting\Tests\Chaos;

use Scada\Broadcasting\Tests\Support\ChaosScenarios;
use Scada\Broadcasting\Tests\Support\IntegrationTestCase;
use Scada\Broadcasting\Tests\Support\Process;
use Scada\Broadcasting\Tests\Support\Processes;
use Scada\Broadcasting\Tests\Support\RedisServer;
use Scada\Broadcasting\Tests\Support\Sockudo;
use Scada\Broadcasting\Tests\Support\Subscriber;

/**
 * Never block, never lose: real producers, a real sidecar, real Redis and
 * Sockudo, and the failures a production host sees. Each scenario prints its
 * figures (CHAOS lines), listed in the README's reliability section.
 */
final class ChaosTest extends IntegrationTestCase
{
    use ChaosScenarios;

    public function test_1_kill_9_of_the_sidecar_while_4_producers_send_200000_events_loses_none(): void
    {
        $this->startStack();
        $sub = $this->subscribe('laravel_database_chaos-*');
        $procs = $this->producers(4, 50000, 8, 25000);
        usleep(700000);
        $this->sidecar->kill();
        $killedAt = microtime(true);
        usleep(500000);
        $this->sidecar->start();
        $restart = microtime(true) - $killedAt;
        $reports = $this->reports($procs);
        [$unique, $dupes, $ordered] = $this->waitUnique($sub, 200000, 60);
        $sink = $this->sidecar->sink('redis');
        self::figure('1 kill -9', [
            'events' => 200000, 'received_unique' => $unique, 'duplicates' => $dupes,
            'duplicate_pct' => 100 * $dupes / 200000, 'sidecar_down_s' => $restart,
            'spooled_by_php' => array_sum(array_map(fn ($r) => $r['stats']['spooled'], $reports)),
            'dropped_by_php' => array_sum(array_map(fn ($r) => $r['stats']['dropped'], $reports)),
            'redelivered_counted' => $sink['replayed_after_restart'] + $sink['resent_after_unclear_failure'],
            'duplicates_dropped_on_ingest' => $this->sidecar->status()['ingest']['duplicates'],
        ]);
        $this->assertSame(200000, $unique);
        $this->assertDuplicatesCounted($dupes, $sink);
        $this->assertLessThanOrEqual(2000, $dupes, 'duplicates at most 1%');
        $this->assertSame(0, array_sum(array_map(fn ($r) => $r['refused'], $reports)));
    }

    public function test_2_a_10_second_redis_outage_delivers_everything_in_order_per_channel(): void
    {
        $this->startStack();
        $sub = new Subscriber($this->dir, $this->redis->port, 'laravel_database_chaos-*', reconnect: true);
        $procs = $this->producers(2, 24000, 4, 1500);
        sleep(3);
        $port = $this->redis->port;
        $this->redis->stop();
        $down = microtime(true);
        sleep(10);
        // Hold the sidecar while Redis and the subscriber come back, so the
        // retried events find the subscriber listening (Pub/Sub keeps nothing).
        $this->sidecar->process()->signal(SIGSTOP);
        $this->redis = new RedisServer($this->dir, $port);
        Processes::waitFor(fn () => $sub->subscriptions() >= 2, 10, 'the subscriber to resubscribe');
        $outage = microtime(true) - $down;
        $this->sidecar->process()->signal(SIGCONT);
        $back = microtime(true);
        $reports = $this->reports($procs);
        [$unique, $dupes, $ordered] = $this->waitUnique($sub, 48000, 60);
        $sink = $this->sidecar->sink('redis');
        self::figure('2 redis outage', [
            'events' => 48000, 'received_unique' => $unique, 'duplicates' => $dupes, 'in_order_per_channel' => $ordered ? 'yes' : 'NO',
            'outage_s' => $outage, 'retries' => $sink['retries'], 'caught_up_after_s' => microtime(true) - $back,
            'php_refused' => array_sum(array_column($reports, 'refused')),
            'possible_duplicates_counted' => $sink['resent_after_unclear_failure'],
        ]);
        $this->assertSame(48000, $unique);
        $this->assertTrue($ordered, 'order kept per channel');
        $this->assertDuplicatesCounted($dupes, $sink);
        $this->assertGreaterThan(0, $sink['retries']);
    }

    /** Every duplicate a subscriber saw was a resend the sidecar counted as a possible duplicate. */
    private function assertDuplicatesCounted(int $dupes, array $sink): void
    {
        $this->assertLessThanOrEqual($sink['replayed_after_restart'] + $sink['resent_after_unclear_failure'], $dupes,
            "$dupes duplicates arrived; the sidecar counted {$sink['replayed_after_restart']} replayed and {$sink['resent_after_unclear_failure']} resent events");
    }

    public function test_3_a_10_second_sockudo_outage_reaches_pusher_js_complete_and_in_order(): void
    {
        $this->startPusherStack();
        $channels = ['chaos-0', 'chaos-1', 'chaos-2', 'chaos-3'];
        $client = $this->pusherClient($channels);
        $subscriptions = $client->subscriptionCount();
        $procs = $this->producers(2, 16000, 4, 1000);
        sleep(3);
        $port = $this->sockudo->port;
        $this->sockudo->stop();
        $down = microtime(true);
        sleep(10);
        $this->sidecar->process()->signal(SIGSTOP);
        $this->sockudo = new Sockudo($this->dir, [], $port);
        Processes::waitFor(fn () => $client->subscriptionCount() >= $subscriptions + count($channels), 60, 'pusher-js to reconnect and resubscribe');
        $outage = microtime(true) - $down;
        $this->sidecar->process()->signal(SIGCONT);
        $back = microtime(true);
        $this->reports($procs);
        $events = $client->waitFor(32000, 90);
        $payloads = array_map(fn ($e) => [$e['channel'], $e['data']], $client->all(1.0));
        [$unique, $dupes, $ordered] = self::ids($payloads);
        $sink = $this->sidecar->sink('pusher');
        self::figure('3 sockudo outage', [
            'events' => 32000, 'received_unique' => $unique, 'duplicates' => $dupes, 'in_order_per_channel' => $ordered ? 'yes' : 'NO',
            'outage_s' => $outage, 'retries' => $sink['retries'], 'caught_up_after_s' => microtime(true) - $back,
            'possible_duplicates_counted' => $sink['resent_after_unclear_failure'],
        ]);
        $this->assertSame(32000, $unique);
        $this->assertTrue($ordered, 'order kept per channel');
        $this->assertDuplicatesCounted($dupes, $sink);
        $this->assertGreaterThan(0, $sink['retries']);
    }

    public function test_4_a_sigstopped_sidecar_never_slows_the_php_call_and_loses_nothing(): void
    {
        $this->startStack();
        $sub = $this->subscribe('laravel_database_chaos-*');
        $stallFile = "$this->dir/stall-window";
        $procs = $this->producers(2, 180000, 4, 20000, $stallFile);
        sleep(2);
        $this->sidecar->process()->signal(SIGSTOP);
        $from = microtime(true);
        sleep(5);
        $to = microtime(true);
        $this->sidecar->process()->signal(SIGCONT);
        file_put_contents($stallFile, "$from $to");
        $reports = $this->reports($procs);
        [$unique, $dupes] = $this->waitUnique($sub, 360000, 60);
        $p99 = max(array_map(fn ($r) => $r['stall']['p99_us'], $reports));
        self::figure('4 SIGSTOP 5s', [
            'events' => 360000, 'received_unique' => $unique, 'duplicates' => $dupes,
            'calls_during_stall' => array_sum(array_map(fn ($r) => $r['stall']['calls'], $reports)),
            'handoff_p50_us_during_stall' => max(array_map(fn ($r) => $r['stall']['p50_us'], $reports)),
            'handoff_p99_us_during_stall' => $p99,
            'handoff_max_us_during_stall' => max(array_map(fn ($r) => $r['stall']['max_us'], $reports)),
            'spooled_by_php' => array_sum(array_map(fn ($r) => $r['stats']['spooled'], $reports)),
        ]);
        $this->assertGreaterThan(100000, array_sum(array_map(fn ($r) => $r['stall']['calls'], $reports)));
        $this->assertLessThanOrEqual(50.0, $p99, 'hand-off p99 during the stall');
        $this->assertSame(360000, $unique);
    }

    public function test_5_producers_without_any_sidecar_are_delivered_from_the_spool_when_it_starts(): void
    {
        $this->startStack();
        $this->sidecar->stop();
        $sub = $this->subscribe('laravel_database_chaos-*');
        $reports = $this->reports($this->producers(4, 25000, 4, 0));
        $files = glob($this->sidecar->spoolDir . '/*.spool');
        $t0 = microtime(true);
        $this->sidecar->start();
        [$unique, $dupes] = $this->waitUnique($sub, 100000, 60);
        self::figure('5 no sidecar', [
            'events' => 100000, 'spool_files' => count($files), 'received_unique' => $unique, 'duplicates' => $dupes,
            'delivered_after_start_s' => microtime(true) - $t0,
            'php_call_p99_us_without_sidecar' => max(array_map(fn ($r) => $r['all']['p99_us'], $reports)),
        ]);
        $this->assertCount(4, $files);
        $this->assertSame(100000, $unique);
        $this->assertSame(0, $dupes);
        $this->assertSame([], glob($this->sidecar->spoolDir . '/*.spool'), 'drained spool files are removed');
    }

    public function test_6_one_million_fuzzed_calls_never_crash_and_memory_stays_bounded(): void
    {
        $this->startStack();
        $calls = (int)(getenv('SCADA_FUZZ_CALLS') ?: 1000000);
        // fuzz.php measures RSS after 100,000 calls (the warm-up): growth is only measured beyond that.
        $this->assertGreaterThan(100000, $calls, 'SCADA_FUZZ_CALLS must exceed the 100,000-call warm-up');
        $p = new Process([PHP_BINARY, ...Processes::extensionArgs(), '-d', 'memory_limit=512M', Processes::root() . '/tests/bin/fuzz.php', (string)$calls],
            "$this->dir/fuzz.log", $this->sidecar->env());
        $this->assertSame(0, $p->wait(600), 'the fuzz process must exit cleanly: ' . substr($p->output(), -3000));
        $lines = array_filter(explode("\n", trim($p->output())), fn ($l) => str_starts_with($l, '{'));
        $r = json_decode((string)end($lines), true);
        $growth = $r['rss_kb']['end'] - $r['rss_kb']['after_100k'];
        self::figure('6 fuzz', [
            'calls' => $r['calls'], 'ok' => $r['accepted_or_ok'], 'exceptions' => $r['exceptions'],
            'rss_start_mb' => $r['rss_kb']['start'] / 1024, 'rss_after_100k_mb' => $r['rss_kb']['after_100k'] / 1024,
            'rss_end_mb' => $r['rss_kb']['end'] / 1024, 'rss_growth_after_warmup_mb' => $growth / 1024, 'seconds' => $r['seconds'],
        ]);
        $this->assertSame([], $r['unexpected'], 'only clear, expected exceptions');
        $this->assertSame(0, $r['empty_messages']);
        $this->assertGreaterThan($calls / 10, $r['accepted_or_ok']);
        $this->assertLessThan(32 * 1024, $growth, 'RSS growth after warm-up stays under 32 MB');
        $this->assertStringNotContainsString('Rust panic', $p->output());
    }

    public function test_7_full_buffers_evict_telemetry_first_and_refuse_critical_events_counted(): void
    {
        $this->startStack();
        $sub = $this->subscribe('laravel_database_*');
        $this->sidecar->stop();
        // One process, two policies, a 64 KiB buffer and no disk spool. It
        // waits at each `step-N` file so the test can start and stop the sidecar.
        $p = $this->php(<<<'PHP'
            <?php
            $dir = getenv('STEP_DIR');
            $step = function (int $n, array $report) use ($dir) {
                echo json_encode(['step' => $n] + $report), "\n";
                while (!file_exists("$dir/step-$n")) { usleep(20000); }
            };
            $s = new Scada\Broadcasting\ScadaBroadcastingService([
                'buffer_bytes' => 65536, 'spool_max_bytes' => 0,
                'overflow_rules' => ['critical-*' => 'reject', 'telemetry-*' => 'drop_oldest'],
            ]);
            $send = function (string $kind, int $from, int $n) use ($s) {
                $ok = [];
                for ($i = $from; $i < $from + $n; $i++) {
                    $ok[$i] = $s->broadcast("$kind-1", 'e', ['i' => $i, 'pad' => str_repeat('x', 60)]);
                }
                return $ok;
            };
            // 1: 300 critical events, then 3000 telemetry samples, no sidecar.
            $critical = $send('critical', 0, 300);
            $telemetry = $send('telemetry', 0, 3000);
            $step(1, ['critical' => $critical, 'telemetry' => $telemetry, 'stats' => $s->stats()]);
            $s->flush(20000);
            // 2: the sidecar is gone again; 2000 critical events.
            $step(2, ['stats' => $s->stats()]);
            $critical = $send('critical', 300, 2000);
            $step(3, ['critical' => $critical, 'stats' => $s->stats()]);
            $s->flush(20000);
            echo json_encode(['step' => 4, 'stats' => $s->stats()]), "\n";
            PHP, ['STEP_DIR' => $this->dir], 'overflow');
        $report = function (int $step) use ($p) {
            $r = null;
            Processes::waitFor(function () use ($p, $step, &$r) {
                foreach (explode("\n", $p->output()) as $line) {
                    $j = json_decode($line, true);
                    if (($j['step'] ?? null) === $step) {
                        $r = $j;
                        return true;
                    }
                }
                return false;
            }, 60, "overflow step $step: " . $p->output());
            return $r;
        };
        $delivered = fn (string $channel) => array_map(fn ($m) => json_decode($m['message'], true)['data']['i'],
            array_values(array_filter($sub->all(0.5), fn ($m) => $m['channel'] === "laravel_database_$channel")));

        $one = $report(1);
        $this->sidecar->start();
        touch("$this->dir/step-1");
        $report(2);
        $criticalSeen = $delivered('critical-1');
        $telemetrySeen = $delivered('telemetry-1');
        $this->assertSame(range(0, 299), $criticalSeen, 'critical events are never evicted');
        $this->assertNotContains(false, $one['telemetry'], 'telemetry is never refused while older telemetry can go');
        $evicted = $one['stats']['dropped_evicted'];
        $this->assertGreaterThan(0, $evicted);
        $this->assertSame(3000 - $evicted, count($telemetrySeen), 'every telemetry sample is delivered or counted as evicted');
        // Eviction works on the in-process buffer; a batch the writer already held when
        // the sidecar vanished is kept too. Either way: in order, and the newest survive.
        $this->assertSame(2999, end($telemetrySeen), 'the newest sample survives');
        $sorted = $telemetrySeen;
        sort($sorted);
        $this->assertSame($sorted, $telemetrySeen, 'surviving samples arrive in order');

        $this->sidecar->stop();
        touch("$this->dir/step-2");
        $three = $report(3);
        $accepted = array_keys(array_filter($three['critical']));
        $refused = 2000 - count($accepted);
        $this->assertGreaterThan(0, $refused, 'a full buffer of critical events refuses the next one');
        // A full buffer refuses (`dropped_rejected`); once the writer holds a batch
        // that has nowhere to go (no sidecar, no spool) it refuses at once
        // (`dropped_no_destination`). Which one a call meets depends on timing.
        $this->assertSame($refused, $three['stats']['dropped_rejected'] + $three['stats']['dropped_no_destination'],
            'each refusal (a false return) is counted');
        $this->sidecar->start();
        touch("$this->dir/step-3");
        $four = $report(4);
        $this->assertSame(0, $p->wait(30));
        $this->assertSame(array_merge(range(0, 299), $accepted), $delivered('critical-1'), 'every accepted critical event arrives, in order');
        self::figure('7 overflow policies', [
            'buffer_kib' => 64, 'telemetry_sent' => 3000, 'telemetry_evicted' => $evicted, 'telemetry_delivered' => count($telemetrySeen),
            'critical_sent' => 2300, 'critical_refused' => $refused, 'critical_delivered' => count($delivered('critical-1')),
            'counted_drops' => $four['stats']['dropped_evicted'] + $four['stats']['dropped_rejected'] + $four['stats']['dropped_no_destination'],
        ]);
    }

    public function test_8_hostile_local_input_is_rejected_before_allocation_counted_and_harmless(): void
    {
        $this->startStack();
        $sub = $this->subscribe('laravel_database_after-attack');
        $pid = $this->sidecar->process()->pid();
        $rss = fn () => (int)preg_replace('/.*VmRSS:\s+(\d+).*/s', '$1', (string)file_get_contents("/proc/$pid/status"));
        $before = $rss();
        $frame = fn (int $kind, string $fields) => pack('VV', 2 + strlen($fields), crc32(chr(1) . chr($kind) . $fields)) . chr(1) . chr($kind) . $fields;
        $hello = $frame(1, pack('PVC', random_int(1, PHP_INT_MAX), 4242, 7) . 'hostile');
        $attack = function (string $bytes, bool $expectClose = true) {
            $s = stream_socket_client("unix://{$this->sidecar->socket}", $errno, $err, 2);
            @fwrite($s, $bytes); // the sidecar may hang up before it has read everything
            if (!$expectClose) {
                usleep(300000); // let the sidecar answer the handshake and read the rest
            }
            stream_set_timeout($s, 3);
            $closed = false;
            $deadline = microtime(true) + 3;
            while ($expectClose && microtime(true) < $deadline) {
                $r = fread($s, 65536);
                if ($r === '' && feof($s)) {
                    $closed = true;
                    break;
                }
            }
            fclose($s);
            return $closed;
        };
        $attacks = [
            // Frames declaring 4 GiB, 1 GiB and 1 MiB + 1 bodies: refused from the 8-byte header.
            'oversized' => [$hello . pack('VV', 0xFFFFFFFF, 0), $hello . pack('VV', 1 << 30, 0), $hello . pack('VV', (1 << 20) + 1, 0) . str_repeat('A', 4096)],
            // Not our protocol at all (an HTTP request, random bytes).
            'garbage' => ["GET / HTTP/1.1\r\nHost: x\r\n\r\n", "\xff\xff\xff\x7f" . random_bytes(65532)],
            // A checksum that does not match, an unknown version, an unknown kind.
            'corrupt' => [$hello . substr_replace($frame(3, 'xxxxxxxx'), 'ZZZZ', 4, 4), $hello . pack('VV', 2, crc32("\x09\x03")) . "\x09\x03", $hello . $frame(99, 'x')],
        ];
        $closed = 0;
        $sent = 0;
        for ($round = 0; $round < 100; $round++) {
            foreach ($attacks as $bytes) {
                foreach ($bytes as $b) {
                    $closed += $attack($b) ? 1 : 0;
                    $sent++;
                }
            }
        }
        // A well-formed frame whose event body is nonsense: dropped and counted, the connection lives on.
        $attack($hello . str_repeat($frame(3, str_repeat("\xff", 40)), 100), false);
        $status = $this->sidecar->status();
        $after = $rss();
        $ingest = $status['ingest'];
        self::figure('8 hostile input', [
            'connections' => $sent + 1, 'closed_by_sidecar' => $closed, 'oversized_frames' => $ingest['oversized_frames'],
            'protocol_errors' => $ingest['protocol_errors'], 'invalid_events' => $ingest['invalid_events'],
            'rss_before_mb' => $before / 1024, 'rss_after_mb' => $after / 1024,
        ]);
        $this->assertSame($sent, $closed, 'every hostile connection is closed');
        $this->assertGreaterThanOrEqual(300, $ingest['oversized_frames']);
        $this->assertGreaterThanOrEqual(500, $ingest['protocol_errors']);
        $this->assertGreaterThanOrEqual(100, $ingest['invalid_events']);
        $this->assertLessThan(32 * 1024, $after - $before, 'no 4 GiB allocation happened: RSS grew by less than 32 MB');
        $this->assertTrue($this->service()->broadcast('after-attack', 'ok', ['still' => 'alive']));
        $this->assertCount(1, $sub->waitFor(1, 10), 'the sidecar keeps delivering');
    }

    public function test_9_sigterm_during_a_redis_outage_keeps_every_event_and_exits_0_in_time(): void
    {
        $this->redis = new RedisServer($this->dir);
        $port = $this->redis->port;
        $this->sidecar = new \Scada\Broadcasting\Tests\Support\Sidecar($this->dir,
            ['REDIS_HOST' => '127.0.0.1', 'REDIS_PORT' => (string)$port], "[server]\nshutdown_timeout_secs = 2\n");
        $this->redis->stop();
        $s = $this->service();
        for ($i = 0; $i < 5000; $i++) {
            $s->broadcast('chaos-term', 'tick', ['p' => 0, 'i' => $i]);
        }
        $this->assertTrue($s->flush(10000), 'the sidecar journaled everything');
        $t = microtime(true);
        $code = $this->sidecar->stop();
        $took = microtime(true) - $t;
        $this->assertSame(0, $code, 'exit 0');
        $this->assertLessThan(2 + 0.5, $took, 'within the shutdown timeout (plus process exit)');
        $this->assertStringContainsString('events stay journaled', $this->sidecar->log());
        $this->redis = new RedisServer($this->dir, $port);
        $sub = $this->subscribe('laravel_database_chaos-term');
        $this->sidecar->start();
        [$unique, $dupes, $ordered] = $this->waitUnique($sub, 5000, 30);
        self::figure('9 SIGTERM with redis down', [
            'events' => 5000, 'shutdown_timeout_s' => 2, 'exit_code' => $code, 'stopped_after_s' => $took,
            'delivered_after_restart' => $unique, 'duplicates' => $dupes, 'in_order' => $ordered ? 'yes' : 'NO',
        ]);
        $this->assertSame(5000, $unique);
        $this->assertTrue($ordered);
    }

    public function test_secrets_never_reach_the_logs_even_when_they_are_wrong(): void
    {
        $dir = $this->dir;
        $redisPassword = 'redis-pass-' . bin2hex(random_bytes(4));
        $redis = new Process(['redis-server', '--port', (string)($port = Processes::freePort()), '--bind', '127.0.0.1', '--save', '', '--requirepass', $redisPassword], "$dir/redis-auth.log");
        Processes::waitFor(fn () => Processes::tcpOpen($port), 10, 'redis with a password');
        $this->sockudo = new Sockudo($dir);
        $wrongSecret = 'wrong-secret-' . bin2hex(random_bytes(4));
        // A wrong Redis password and a wrong Pusher secret: errors get logged, secrets do not.
        $this->sidecar = new \Scada\Broadcasting\Tests\Support\Sidecar($dir, [
            'REDIS_HOST' => '127.0.0.1', 'REDIS_PORT' => (string)$port, 'REDIS_PASSWORD' => 'not-' . $redisPassword,
            'SCADA_LOG' => 'debug',
        ] + $this->sockudo->pusherEnv(['PUSHER_APP_SECRET' => $wrongSecret]));
        $this->service()->broadcast('x', 'e', ['a' => 1]);
        Processes::waitFor(fn () => $this->sidecar->sink('redis')['retries'] > 0 && $this->sidecar->sink('pusher')['retries'] > 0, 20, 'failed attempts');
        $this->sidecar->stop();
        $log = $this->sidecar->log();
        $this->assertStringContainsString('unavailable', $log, 'the failures are logged');
        foreach ([$redisPassword, 'not-' . $redisPassword, $wrongSecret, Sockudo::SECRET] as $secret) {
            $this->assertStringNotContainsString($secret, $log);
        }
        // The socket directory is private to the sidecar's user (and group), the socket 0660.
        $this->sidecar->start();
        $this->assertSame(0750, fileperms(dirname($this->sidecar->socket)) & 0777);
        $this->assertSame(0660, fileperms($this->sidecar->socket) & 0777);
        $redis->kill();
    }
}
