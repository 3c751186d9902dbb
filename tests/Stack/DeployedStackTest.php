<?php

namespace Scada\Broadcasting\Tests\Stack;

use Scada\Broadcasting\ScadaBroadcastingService;
use Scada\Broadcasting\Tests\Support\Process;
use Scada\Broadcasting\Tests\Support\Processes;
use Scada\Broadcasting\Tests\Support\StackTestCase;

/**
 * What a user checks after deploying: PHP with the extension, the sidecar,
 * Redis and a Pusher-protocol server working together. In Docker
 * (`docker compose run tests`, SCADA_STACK=external) every service is its own
 * container; in `make test` the same stack runs as local processes.
 */
final class DeployedStackTest extends StackTestCase
{
    private function service(): ScadaBroadcastingService
    {
        // Configured like the app: by SCADA_SIDECAR_SOCKET (set by compose), or explicitly here.
        return self::$stack->external ? new ScadaBroadcastingService() : new ScadaBroadcastingService(['socket' => self::$stack->socket()]);
    }

    private static function unique(string $name): string
    {
        return $name . '-' . bin2hex(random_bytes(4));
    }

    public function test_the_extension_is_built_for_this_php_and_nothing_runs_as_root(): void
    {
        $this->assertTrue(extension_loaded('scada_broadcast'));
        $info = new Process([PHP_BINARY, ...Processes::extensionArgs(), '-i'], "$this->dir/php-i.log");
        $this->assertSame(0, $info->wait(20));
        $this->assertMatchesRegularExpression('/^PHP Extension Build => API\d+,N?TS/m', $info->output());
        $this->assertStringNotContainsString('Unable to load dynamic library', $info->output());
        preg_match('/^PHP Extension Build => (.*)$/m', $info->output(), $build);
        fwrite(STDERR, sprintf("\nSTACK php=%s extension=%s build=%s uid=%d sidecar_socket_owner_uid=%d mode=%s\n",
            PHP_VERSION, phpversion('scada_broadcast'), $build[1], posix_geteuid(), fileowner(self::$stack->socket()),
            self::$stack->external ? 'external (containers)' : 'local processes'));
        if (self::$stack->external) {
            $this->assertNotSame(0, posix_geteuid(), 'the PHP container runs without root');
            $this->assertNotSame(0, fileowner(self::$stack->socket()), 'the sidecar runs without root');
            $this->assertSame(0660, fileperms(self::$stack->socket()) & 0777);
            $this->assertTrue(Processes::extensionFromIni(), 'enabled by an ini file in conf.d');
        }
    }

    public function test_an_event_reaches_redis_in_laravels_format_and_pusher_js_through_the_server(): void
    {
        $channel = self::unique('stack');
        $sub = self::$stack->subscribe($this->dir, "laravel_database_$channel");
        $client = self::$stack->pusherClient($this->dir, [$channel]);
        $data = ['channel' => 'PLC-7', 'value' => 21.5, 'unit' => '°C'];
        $this->assertTrue($this->service()->broadcastData($data, $channel));

        [$m] = $sub->waitFor(1, 15);
        $message = json_decode($m['message'], true);
        $this->assertSame('scada.data.received', $message['event']);
        $this->assertSame($data, $message['data']['data']);
        [$e] = $client->waitFor(1, 15);
        $this->assertSame('scada.data.received', $e['event']);
        unset($message['data']['socket']); // Laravel's Redis format carries the excluded socket, Pusher's does not
        $this->assertSame($message['data'], $e['data'], 'both targets get the same payload');
    }

    public function test_a_laravel_app_broadcasts_queued_events_through_the_scada_driver(): void
    {
        $sub = self::$stack->subscribe($this->dir, 'laravel_database_orders');
        $client = self::$stack->pusherClient($this->dir, ['orders']);
        $app = self::$stack->laravel($this->dir);
        $worker = $app->start(['queue:work', '--sleep=0.1']);
        [$code, $out] = $app->artisan(['test:broadcast', 'orders', '--count=20']);
        $this->assertSame(0, $code, $out);

        $ids = array_map(fn ($m) => json_decode($m['message'], true)['data']['order']['id'], $sub->waitFor(20, 30));
        sort($ids);
        $this->assertSame(range(0, 19), $ids);
        $this->assertCount(20, $client->waitFor(20, 30));
        $this->assertSame(0, $worker->stop(), $worker->output());
    }

    public function test_pusher_js_joins_private_and_presence_channels_through_the_apps_auth_endpoint(): void
    {
        $app = self::$stack->laravel($this->dir);
        [$server, $base] = $app->serve();
        $client = self::$stack->pusherClient($this->dir, ['private-plant.3', 'presence-control-room'], "$base/broadcasting/auth", 'X-User: 7');
        $this->assertSame(0, $app->artisan(['test:broadcast', 'alarm', '--plant=3'])[0]);
        $this->assertSame(0, $app->artisan(['test:broadcast', 'shift'])[0]);
        $byChannel = array_column($client->waitFor(2, 15), 'event', 'channel');
        ksort($byChannel);
        $this->assertSame(['presence-control-room' => 'App\\Events\\ShiftChanged', 'private-plant.3' => 'sensor.alarm'], $byChannel);
        $server->stop();
    }

    public function test_samples_from_several_processes_share_one_aggregation_window_in_the_sidecar(): void
    {
        $channel = self::unique('stack-agg');
        $sub = self::$stack->subscribe($this->dir, "laravel_database_$channel");
        $producers = [];
        for ($p = 0; $p < 3; $p++) {
            $file = "$this->dir/agg-$p.php";
            file_put_contents($file, sprintf('<?php
                $s = new Scada\Broadcasting\ScadaBroadcastingService(["socket" => %s]);
                for ($i = 0; $i < 1000; $i++) { $s->broadcastAggregatedData(["flow" => %d], %s, 200); usleep(1000); }
                $s->flush(10000);', var_export(self::$stack->socket(), true), $p + 1, var_export($channel, true)));
            $producers[] = new Process([PHP_BINARY, ...Processes::extensionArgs(), $file], "$file.log");
        }
        foreach ($producers as $p) {
            $this->assertSame(0, $p->wait(60), $p->output());
        }
        $count = 0;
        $sum = 0.0;
        Processes::waitFor(function () use ($sub, &$count, &$sum) {
            [$count, $sum] = [0, 0.0];
            foreach ($sub->all(0) as $m) {
                $series = json_decode($m['message'], true)['data']['data']['flow'] ?? null;
                $count += $series['count'] ?? 0;
                $sum += $series['sum'] ?? 0;
            }
            return $count >= 3000;
        }, 20, 'every sample counted in some window');
        $messages = count($sub->all(0.5));
        fwrite(STDERR, "\nSTACK aggregation: samples=3000 processes=3 counted=$count messages=$messages\n");
        $this->assertSame(3000, $count);
        $this->assertEqualsWithDelta(6000.0, $sum, 1e-6, '1000 × (1 + 2 + 3)');
        $this->assertLessThan(100, $messages, 'one message per 200 ms window, not one per sample');
    }

    public function test_artisan_scada_status_shows_a_healthy_sidecar_and_both_targets(): void
    {
        [$code, $out] = self::$stack->laravel($this->dir)->artisan(['scada:status']);
        $this->assertSame(0, $code, $out);
        $this->assertMatchesRegularExpression('/\| redis\s+\| redis\s+\|[^\n]*\| yes /', $out);
        $this->assertMatchesRegularExpression('/\| pusher\s+\| pusher\s+\|[^\n]*\| yes /', $out);
        $status = self::$stack->status();
        $this->assertGreaterThan(0, $status['ingest']['events']);
    }
}
