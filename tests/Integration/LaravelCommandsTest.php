<?php

namespace Scada\Broadcasting\Tests\Integration;

use Scada\Broadcasting\Tests\Support\IntegrationTestCase;
use Scada\Broadcasting\Tests\Support\Processes;
use Scada\Broadcasting\Tests\Support\RedisServer;
use Scada\Broadcasting\Tests\Support\Sockudo;
use Scada\Broadcasting\Tests\Support\Subscriber;

/** The package's artisan commands, run as real processes. */
final class LaravelCommandsTest extends IntegrationTestCase
{
    public function test_status_shows_the_sidecar_its_counters_targets_and_this_process(): void
    {
        $this->startPusherStack(withRedis: true);
        $this->service()->broadcast('x', 'e', ['a' => 1]);
        $this->service()->flush();
        Processes::waitFor(fn () => array_sum(array_column($this->sidecar->status()['sinks'], 'delivered')) === 2, 10, 'delivery');

        [$code, $out] = $this->laravel()->artisan(['scada:status']);
        $this->assertSame(0, $code, $out);
        $this->assertMatchesRegularExpression('/Sidecar: UP \(pid \d+, version [\d.]+/', $out);
        $this->assertStringContainsString('1 events journaled', $out);
        $this->assertMatchesRegularExpression('/\| redis\s+\| redis\s+\| redis:\/\/127\.0\.0\.1:\d+\/0\s+\| yes\s+\| 1 /', $out);
        $this->assertMatchesRegularExpression('/\| pusher\s+\| pusher\s+\| http:\/\/127\.0\.0\.1:\d+\s+\| yes\s+\| 1 /', $out);
        $this->assertStringContainsString('This process (', $out);
        $this->assertMatchesRegularExpression('/\| accepted\s+\| 0 /', $out);

        [$code, $json] = $this->laravel()->artisan(['scada:status', '--json']);
        $this->assertSame(0, $code);
        $this->assertSame(1, json_decode(substr($json, strpos($json, '{')), true)['sidecar']['ingest']['events']);
    }

    public function test_status_shows_each_destination_s_priority_lane_with_a_priority_rule(): void
    {
        $this->startPusherStack(['SCADA_PRIORITY' => 'alarms-*'], withRedis: true);
        $this->service()->broadcast('alarms-1', 'e', ['a' => 1]);
        $this->service()->broadcast('x', 'e', ['a' => 2]);
        $this->service()->flush();
        Processes::waitFor(fn () => array_sum(array_column($this->sidecar->status()['sinks'], 'delivered')) === 4, 10, 'delivery');

        [$code, $out] = $this->laravel()->artisan(['scada:status']);
        $this->assertSame(0, $code, $out);
        // One event each: the alarm through the priority lanes, the rest through the telemetry lanes.
        $this->assertMatchesRegularExpression('/\| redis:priority\s+\| redis\s+\| redis:\/\/127\.0\.0\.1:\d+\/0\s+\| yes\s+\| 1 /', $out);
        $this->assertMatchesRegularExpression('/\| redis\s+\| redis\s+\| redis:\/\/127\.0\.0\.1:\d+\/0\s+\| yes\s+\| 1 /', $out);
        $this->assertMatchesRegularExpression('/\| pusher:priority\s+\| pusher\s+\| http:\/\/127\.0\.0\.1:\d+\s+\| yes\s+\| 1 /', $out);
        $this->assertMatchesRegularExpression('/\| pusher\s+\| pusher\s+\| http:\/\/127\.0\.0\.1:\d+\s+\| yes\s+\| 1 /', $out);
    }

    public function test_status_says_clearly_when_the_sidecar_is_down(): void
    {
        $this->startStack();
        $this->sidecar->stop();
        [$code, $out] = $this->laravel()->artisan(['scada:status']);
        $this->assertSame(1, $code);
        $this->assertStringContainsString('Sidecar: DOWN', $out);
        $this->assertStringContainsString('php artisan scada:sidecar', $out);
        $this->assertStringContainsString('events are spooled, not lost', $out);
    }

    public function test_load_test_reports_what_it_measured_and_every_message_arrives(): void
    {
        $this->startStack();
        $sub = $this->subscribe('laravel_database_load-test');
        [$code, $out] = $this->laravel()->artisan(['scada:load-test', '--messages=3000']);
        $this->assertSame(0, $code, $out);
        $this->assertStringContainsString('=== Load Test Results ===', $out);
        $this->assertStringContainsString('Total messages: 3000', $out);
        $this->assertStringContainsString('Successful: 3000', $out);
        $this->assertStringContainsString('Errors: 0', $out);
        $this->assertMatchesRegularExpression('/Duration: [\d.]+ seconds/', $out);
        $this->assertMatchesRegularExpression('/Rate: [\d,.]+ messages\/second/', $out);
        $this->assertStringContainsString('Handed to the sidecar: yes (acknowledged 3000, spooled 0, dropped 0)', $out);
        $this->assertCount(3000, $sub->waitFor(3000));

        [$code, $out] = $this->laravel()->artisan(['scada:load-test', '--messages=50', '--via=event'], ['QUEUE_CONNECTION' => 'sync']);
        $this->assertSame(0, $code, $out);
        $this->assertStringContainsString('Successful: 50', $out);
        $this->assertCount(3050, $sub->waitFor(3050));
    }

    public function test_scada_sidecar_runs_a_working_sidecar_configured_from_laravel(): void
    {
        $this->redis = new RedisServer($this->dir);
        $this->sockudo = new Sockudo($this->dir);
        $socket = "$this->dir/own/sidecar.sock";
        $app = $this->laravel([
            'SCADA_SIDECAR_SOCKET' => $socket,
            'SCADA_SPOOL_DIR' => "$this->dir/own/spool",
            'SCADA_SIDECAR_BIN' => Processes::sidecarBinary(),
            'REDIS_HOST' => '127.0.0.1',
            'REDIS_PORT' => (string) $this->redis->port,
            'REDIS_PASSWORD' => '',
            'APP_NAME' => 'Plant One',
        ] + $this->sockudo->pusherEnv(['PUSHER_APP_SECRET' => Sockudo::SECRET]));

        [$code, $toml] = $app->artisan(['scada:sidecar', '--print-config']);
        $this->assertSame(0, $code, $toml);
        $this->assertStringContainsString("socket = \"$socket\"", $toml);
        $this->assertStringContainsString('prefix = "plant_one_database_"', $toml);
        $this->assertStringContainsString('[[pusher]]', $toml);
        $this->assertStringContainsString('secret = "***"', $toml);
        $this->assertStringNotContainsString(Sockudo::SECRET, $toml);

        $sidecar = $app->start(['scada:sidecar']);
        Processes::waitFor(fn () => file_exists($socket), 15, "the sidecar started by artisan\n" . $sidecar->output());
        $sub = new Subscriber($this->dir, $this->redis->port);
        $client = $this->pusherClient(['from-artisan']);
        $s = new \Scada\Broadcasting\ScadaBroadcastingService(['socket' => $socket, 'spool_dir' => "$this->dir/own/spool"]);
        $this->assertTrue($s->broadcast('from-artisan', 'hello', ['n' => 1]));
        [$m] = $sub->waitFor(1);
        $this->assertSame('plant_one_database_from-artisan', $m['channel']);
        $this->assertSame(['n' => 1], $client->waitFor(1)[0]['data']);
        $this->assertTrue(is_file("$this->dir/laravel-storage/scada-broadcast/sidecar.toml"));
        $this->assertSame(0600, fileperms("$this->dir/laravel-storage/scada-broadcast/sidecar.toml") & 0777);

        // SIGTERM reaches the sidecar through artisan; it stops cleanly.
        $this->assertSame(0, $sidecar->stop(20), $sidecar->output());
        $this->assertStringContainsString('stopped; everything journaled was delivered', $sidecar->output());
        $this->assertStringNotContainsString(Sockudo::SECRET, $sidecar->output());
    }

    /** The status line and headers of a GET to the sidecar's SSE listener (the stream itself is not read). */
    private static function sseHead(int $port, string $path, array $headers = []): array
    {
        $fp = fsockopen('127.0.0.1', $port, $errno, $error, 5);
        stream_set_timeout($fp, 10);
        $request = "GET $path HTTP/1.1\r\nHost: " . ($headers['Host'] ?? "127.0.0.1:$port") . "\r\n";
        unset($headers['Host']);
        foreach ($headers as $k => $v) {
            $request .= "$k: $v\r\n";
        }
        fwrite($fp, $request . "\r\n");
        $head = '';
        while (! str_contains($head, "\r\n\r\n") && ($line = fgets($fp)) !== false) {
            $head .= $line;
        }
        fclose($fp);
        preg_match('{^HTTP/1\.1 (\d+)}', $head, $m);

        return [(int) ($m[1] ?? 0), $head];
    }

    public function test_scada_sidecar_passes_the_sse_settings_and_priority_without_printing_secrets(): void
    {
        $this->redis = new RedisServer($this->dir);
        $ssePort = Processes::freePort();
        $sseSecret = 'sse-secret-' . bin2hex(random_bytes(8));
        $socket = "$this->dir/own/sidecar.sock";
        $app = $this->laravel([
            'SCADA_SIDECAR_SOCKET' => $socket,
            'SCADA_SPOOL_DIR' => "$this->dir/own/spool",
            'SCADA_SIDECAR_BIN' => Processes::sidecarBinary(),
            'REDIS_HOST' => '127.0.0.1',
            'REDIS_PORT' => (string) $this->redis->port,
            'REDIS_PASSWORD' => '',
            'SCADA_SSE_ADDR' => "127.0.0.1:$ssePort",
            'SCADA_SSE_SECRET' => $sseSecret,
            'SCADA_SSE_CORS' => 'https://ops.example, https://b.example',
            'SCADA_SSE_ALLOWED_HOSTS' => 'plant.example',
            'SCADA_DASHBOARD_CONNECT' => 'ws://127.0.0.1:6001',
            'SCADA_PRIORITY' => 'alarms-*,critical-*',
            'SCADA_REDIS_LAST_VALUE' => 'true',
        ]);

        [$code, $toml] = $app->artisan(['scada:sidecar', '--print-config']);
        $this->assertSame(0, $code, $toml);
        $this->assertStringContainsString("[sse]\naddr = \"127.0.0.1:$ssePort\"\nsecret = \"***\"\n"
            . "cors_origins = [\"https://ops.example\", \"https://b.example\"]\nallowed_hosts = [\"plant.example\"]\ndashboard_connect = [\"ws://127.0.0.1:6001\"]\n", $toml);
        $this->assertStringContainsString("last_value = true", $toml);
        $this->assertStringNotContainsString($sseSecret, $toml);

        $sidecar = $app->start(['scada:sidecar']);
        Processes::waitFor(fn () => file_exists($socket) && Processes::tcpOpen($ssePort), 15, "the sidecar with its SSE listener\n" . $sidecar->output());

        // The secret reached it: a token the app signs opens a private channel, a forged one does not.
        $issuer = new \Scada\Broadcasting\Sse\SseTokenIssuer($sseSecret);
        ['token' => $token] = $issuer->issue(['private-plant.1'], time());
        [$status] = self::sseHead($ssePort, '/sse?channels=private-plant.1&token=' . urlencode($token));
        $this->assertSame(200, $status);
        ['token' => $forged] = (new \Scada\Broadcasting\Sse\SseTokenIssuer('another-secret'))->issue(['private-plant.1'], time());
        [$status] = self::sseHead($ssePort, '/sse?channels=private-plant.1&token=' . urlencode($forged));
        $this->assertSame(403, $status);
        // CORS: the listed origins, and no other.
        [$status, $head] = self::sseHead($ssePort, '/sse?channels=a', ['Origin' => 'https://b.example']);
        $this->assertSame(200, $status);
        $this->assertStringContainsString("access-control-allow-origin: https://b.example\r\n", strtolower($head));
        [$status] = self::sseHead($ssePort, '/sse?channels=a', ['Origin' => 'https://evil.example']);
        $this->assertSame(403, $status);
        // The host name passed on is answered, another name is not (DNS rebinding protection).
        $this->assertSame(200, self::sseHead($ssePort, '/dashboard/', ['Host' => 'plant.example'])[0]);
        $this->assertSame(403, self::sseHead($ssePort, '/dashboard/', ['Host' => 'evil.example'])[0]);
        // The dashboard's Content-Security-Policy lets the page reach the listed origin.
        [$status, $head] = self::sseHead($ssePort, '/dashboard/');
        $this->assertSame(200, $status);
        $this->assertMatchesRegularExpression('{content-security-policy: [^\r]*connect-src [^\r;]*ws://127\.0\.0\.1:6001}i', $head);

        // SCADA_PRIORITY is in the sidecar's environment (artisan's child process).
        $children = array_filter(array_map('intval', explode(' ', trim((string) @file_get_contents("/proc/{$sidecar->pid()}/task/{$sidecar->pid()}/children")))));
        $this->assertCount(1, $children, 'artisan runs one sidecar');
        $environ = explode("\0", (string) file_get_contents('/proc/' . reset($children) . '/environ'));
        $this->assertContains('SCADA_PRIORITY=alarms-*,critical-*', $environ);
        $this->assertEmpty(preg_grep('/SECRET|PASSWORD/', $environ), 'secrets reach the sidecar only through its 0600 file');

        $this->assertSame(0, $sidecar->stop(20), $sidecar->output());
        $this->assertStringNotContainsString($sseSecret, $sidecar->output());
        $this->assertStringContainsString("secret = \"$sseSecret\"", file_get_contents("$this->dir/laravel-storage/scada-broadcast/sidecar.toml"));
    }

    public function test_scada_sidecar_says_how_to_get_the_binary_when_it_is_missing(): void
    {
        $this->startStack();
        [$code, $out] = $this->laravel(['SCADA_SIDECAR_BIN' => '/nonexistent/scada-sidecar'])->artisan(['scada:sidecar']);
        $this->assertNotSame(0, $code);
        $this->assertStringContainsString("The scada-sidecar binary was not found: '/nonexistent/scada-sidecar'", $out);
        $this->assertStringContainsString('cargo build --release', $out);
    }

    public function test_flush_waits_until_the_sidecar_delivered_its_backlog_including_orphaned_spools(): void
    {
        $this->startStack();
        $sub = $this->subscribe('laravel_database_flushed');
        // Leave an orphaned spool file: a producer that ran while the sidecar was down.
        $this->sidecar->stop();
        $p = $this->php('<?php $s = new Scada\Broadcasting\ScadaBroadcastingService(); for ($i = 0; $i < 200; $i++) { $s->broadcast("flushed", "e", ["i" => $i]); }');
        $this->assertSame(0, $p->wait(20), $p->output());
        $this->assertNotEmpty(glob($this->sidecar->spoolDir . '/*.spool'));
        $this->sidecar->start();
        [$code, $out] = $this->laravel()->artisan(['scada:flush', '--timeout=20']);
        $this->assertSame(0, $code, $out);
        $this->assertStringContainsString('Everything is delivered', $out);
        $this->assertCount(200, $sub->waitFor(200));
    }
}
