<?php

namespace Scada\Broadcasting\Tests\Chaos;

use Scada\Broadcasting\Tests\Support\IntegrationTestCase;
use Scada\Broadcasting\Tests\Support\Processes;
use Scada\Broadcasting\Tests\Support\RedisServer;
use Scada\Broadcasting\Tests\Support\Sidecar;
use Scada\Broadcasting\Tests\Support\Subscriber;

require_once __DIR__ . '/../../ext/tests/php/lib.php';

/**
 * The spool directory on a real, full filesystem (a tmpfs of a few MB; the
 * tests run as root) and no sidecar: every event a call accepted is either
 * on disk or reported lost (PHP's log and a loss record); calls that could
 * not be kept are refused and counted; when a sidecar appears, calls are
 * accepted again by themselves and everything accepted is delivered.
 */
final class FullDiskTest extends IntegrationTestCase
{
    /** @var list<string> */
    private array $mounts = [];

    protected function tearDown(): void
    {
        $this->sidecar?->kill();
        $this->sidecar = null;
        foreach ($this->mounts as $m) {
            exec('umount ' . escapeshellarg($m) . ' 2>&1');
        }
        parent::tearDown();
    }

    private function tmpfs(string $path, string $size): void
    {
        @mkdir($path, 0770, true);
        exec('mount -t tmpfs -o size=' . $size . ' tmpfs ' . escapeshellarg($path) . ' 2>&1', $out, $rc);
        $this->assertSame(0, $rc, 'mount a tmpfs (the tests run as root): ' . implode("\n", $out));
        $this->mounts[] = $path;
    }

    /** Fills `$path` until only about `$leave` bytes are free. */
    private function fill(string $path, int $leave): void
    {
        $f = fopen("$path/filler", 'w');
        $chunk = str_repeat("\0", 65536);
        while (disk_free_space($path) > $leave + 65536 && fwrite($f, $chunk) === 65536) {
        }
        fclose($f);
    }

    private static function figure(string $scenario, array $figures): void
    {
        $parts = [];
        foreach ($figures as $k => $v) {
            $parts[] = "$k=" . (is_float($v) ? round($v, 2) : $v);
        }
        fwrite(STDERR, "\nCHAOS $scenario: " . implode(' ', $parts) . "\n");
    }

    /** A producer: `$count` events at `$rate`/s (0: flat out); prints one JSON line. */
    private function producer(int $count, float $rate, array $env): \Scada\Broadcasting\Tests\Support\Process
    {
        $code = <<<'PHP'
<?php
[$count, $rate] = [(int)getenv('COUNT'), (float)getenv('RATE')];
$s = new Scada\Broadcasting\ScadaBroadcastingService(['shutdown_timeout_ms' => 500]);
$accepted = 0; $refused = 0; $lastRefused = -1;
$t0 = microtime(true);
for ($i = 0; $i < $count; $i++) {
    if ($rate > 0 && $i % 50 === 0) {
        $wait = $t0 + $i / $rate - microtime(true);
        if ($wait > 0) { usleep((int)($wait * 1e6)); }
    }
    if ($s->broadcast('disk-' . ($i % 4), 'tick', ['p' => 0, 'i' => $i, 'pad' => str_repeat('x', 100)])) {
        $accepted++;
    } else {
        $refused++; $lastRefused = $i;
    }
}
$flushed = $s->flush(5000);
echo json_encode(['accepted' => $accepted, 'refused' => $refused, 'last_refused' => $lastRefused, 'flushed' => $flushed, 'stats' => $s->stats()]), "\n";
PHP;
        return $this->php($code, $env + ['COUNT' => (string)$count, 'RATE' => (string)$rate]);
    }

    private static function report(string $output): array
    {
        $lines = array_filter(explode("\n", trim($output)), fn ($l) => str_starts_with($l, '{'));
        return json_decode((string)end($lines), true);
    }

    /** Sum of the events named by the loss records in `$dir`. */
    private static function lostOnRecord(string $dir): int
    {
        $n = 0;
        foreach (glob("$dir/*.lost") as $f) {
            $n += (int)explode('-', basename($f, '.lost'))[3];
        }
        return $n;
    }

    public function test_a_process_with_no_sidecar_and_a_full_spool_disk_accounts_for_every_accepted_event(): void
    {
        $spool = "$this->dir/run/spool";
        $this->tmpfs($spool, '2m');
        $env = ['SCADA_SIDECAR_SOCKET' => "$this->dir/run/sidecar.sock", 'SCADA_SPOOL_DIR' => $spool];
        $p = $this->producer(30000, 0, $env);
        $this->assertSame(0, $p->wait(60), $p->output());
        $r = self::report($p->output());
        $onDisk = count(spooled_frames($spool));
        $lost = self::lostOnRecord($spool);
        self::figure('full spool disk, no sidecar', [
            'calls' => 30000, 'accepted' => $r['accepted'], 'refused' => $r['refused'],
            'spooled_on_disk' => $onDisk, 'lost_reported' => $lost, 'stats_lost_before_exit' => $r['stats']['lost'],
            'refused_no_destination' => $r['stats']['dropped_no_destination'], 'refused_buffer_full' => $r['stats']['dropped_rejected'],
        ]);
        $this->assertGreaterThan(0, $r['refused'], 'the disk filled up: calls were refused');
        $this->assertSame($r['refused'], $r['stats']['dropped_no_destination'] + $r['stats']['dropped_rejected'], 'every refusal is counted');
        $this->assertSame($r['accepted'], $onDisk + $lost, 'every accepted event is on disk or reported lost');
        $this->assertSame($r['stats']['spooled'], $onDisk);
        if ($lost > 0) {
            $this->assertStringContainsString("scada_broadcast: $lost accepted event", $p->output(), 'PHP\'s log names the loss');
            $this->assertStringContainsString('(no_destination)', $p->output());
        }

        // A sidecar appears: it drains the file the process left, to the last event.
        $this->redis = new RedisServer($this->dir);
        $sub = new Subscriber($this->dir, $this->redis->port, 'laravel_database_disk-*');
        $this->sidecar = new Sidecar($this->dir, ['REDIS_HOST' => '127.0.0.1', 'REDIS_PORT' => (string)$this->redis->port]);
        $got = [];
        Processes::waitFor(function () use ($sub, $onDisk, &$got) {
            foreach ($sub->all(0) as $m) {
                $got[json_decode($m['message'], true)['data']['i']] = true;
            }
            return count($got) >= $onDisk;
        }, 60, "$onDisk spooled events delivered");
        $this->assertCount($onDisk, $got);
    }

    public function test_a_full_disk_then_a_sidecar_appearing_resumes_by_itself_and_delivers_everything_accepted(): void
    {
        $spool = "$this->dir/run/spool";
        $this->tmpfs($spool, '1m');
        $this->fill($spool, 48 * 1024);
        $this->redis = new RedisServer($this->dir);
        $sub = new Subscriber($this->dir, $this->redis->port, 'laravel_database_disk-*');
        $env = ['SCADA_SIDECAR_SOCKET' => "$this->dir/run/sidecar.sock", 'SCADA_SPOOL_DIR' => $spool];
        $count = 20000;
        $p = $this->producer($count, 5000, $env);
        usleep(1500000);
        $this->sidecar = new Sidecar($this->dir, ['REDIS_HOST' => '127.0.0.1', 'REDIS_PORT' => (string)$this->redis->port]);
        $up = microtime(true);
        $this->assertSame(0, $p->wait(60), $p->output());
        $r = self::report($p->output());
        $got = [];
        Processes::waitFor(function () use ($sub, $r, &$got) {
            foreach ($sub->all(0) as $m) {
                $got[json_decode($m['message'], true)['data']['i']] = true;
            }
            return count($got) >= $r['accepted'];
        }, 60, "{$r['accepted']} accepted events delivered");
        self::figure('full disk, then the sidecar appears', [
            'calls' => $count, 'accepted' => $r['accepted'], 'refused_while_no_destination' => $r['stats']['dropped_no_destination'],
            'last_refused_call' => $r['last_refused'], 'delivered_unique' => count($got), 'lost' => $r['stats']['lost'],
            'caught_up_after_s' => microtime(true) - $up,
        ]);
        $this->assertGreaterThan(0, $r['stats']['dropped_no_destination'], 'calls were refused while nothing could take events');
        $this->assertSame($r['refused'], $r['stats']['dropped_no_destination'] + $r['stats']['dropped_rejected']);
        $this->assertLessThan($count - 2500, $r['last_refused'], 'calls are accepted again by themselves once the sidecar is up');
        $this->assertTrue($r['flushed']);
        $this->assertSame(0, $r['stats']['lost']);
        $this->assertCount($r['accepted'], $got, 'every accepted event delivered');
        $this->assertSame([], glob("$spool/*.lost"), 'nothing lost, nothing reported');
    }
}
