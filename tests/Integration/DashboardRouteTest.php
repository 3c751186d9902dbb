<?php

namespace Scada\Broadcasting\Tests\Integration;

use Scada\Broadcasting\Tests\Support\FreshApp;
use Scada\Broadcasting\Tests\Support\IntegrationTestCase;
use Scada\Broadcasting\Tests\Support\Process;
use Scada\Broadcasting\Tests\Support\Processes;
use Scada\Broadcasting\Tests\Support\ServesLaravel;
use Scada\Broadcasting\Tests\Support\TestApp;

/**
 * The package's dashboard (php/resources/dashboard) in the real test app,
 * served by `php -S`: the opt-in GET route embeds the page's configuration
 * and serves the page's own files, nothing else; `vendor:publish
 * --tag=scada-dashboard` copies the files for a web server.
 */
final class DashboardRouteTest extends IntegrationTestCase
{
    private const PUSHER_SECRET = 'pusher-secret-for-dashboard';
    private const SSE_SECRET = 'sse-secret-for-dashboard';

    use ServesLaravel;

    private function serve(array $env): string
    {
        return $this->serveApp($env + [
            'PUSHER_APP_KEY' => 'dash-key', 'PUSHER_APP_SECRET' => self::PUSHER_SECRET, 'PUSHER_APP_ID' => '1',
            'SCADA_SSE_SECRET' => self::SSE_SECRET,
        ]);
    }

    private static function root(): string
    {
        return Processes::root() . '/php/resources/dashboard';
    }

    /** The JSON the route put into the page. */
    private static function embedded(string $html): array
    {
        preg_match('{<script type="application/json" id="scada-dashboard-config">(.*?)</script>}s', $html, $m);

        return json_decode($m[1] ?? 'null', true, 512, JSON_THROW_ON_ERROR) ?? [];
    }

    public function test_the_opt_in_route_serves_the_page_with_the_sse_url_and_channels_from_config(): void
    {
        $base = $this->serve(['SCADA_DASHBOARD_ROUTE' => '/scada/dashboard', 'SCADA_SSE_URL' => 'https://plant.example/scada/sse', 'SCADA_DASHBOARD_CHANNELS' => 'line-1,line-2,alarms-line']);
        [$status, $type, $html, $headers] = TestApp::requestWithHeaders('GET', "$base/scada/dashboard");
        $this->assertSame(200, $status, $html);
        $this->assertSame('text/html; charset=utf-8', $type);
        // The page may connect to its own origin and the configured sidecar's, nowhere else.
        $this->assertSame("default-src 'self'; script-src 'self'; connect-src 'self' https://plant.example; img-src 'self' data:; style-src 'self' 'unsafe-inline'; base-uri 'self'; form-action 'none'; frame-ancestors 'self'", $headers['content-security-policy'][0] ?? null);
        $this->assertStringContainsString('<base href="/scada/dashboard/">', $html, 'relative asset URLs resolve under the route');
        $this->assertSame(['mode' => 'sse', 'channels' => ['line-1', 'line-2', 'alarms-line'], 'sseUrl' => 'https://plant.example/scada/sse', 'tokenUrl' => '/broadcasting/sse-token', 'allowedOrigins' => ['https://plant.example']], self::embedded($html));
        // With a session (the 11+ app's default `web` group) the page carries the CSRF token the connector sends to
        // the token route; the 8/10 test app's `web` group is empty: no session, no token, and no error.
        $csrf = preg_match('{<meta name="csrf-token" content="([A-Za-z0-9]{40})">}', $html);
        $this->assertSame(TestApp::elevenPlus(), (bool) $csrf, 'a CSRF meta exactly where the app has a session (Laravel ' . TestApp::laravelVersion() . ')');
        $this->assertSame($csrf, substr_count($html, 'csrf-token'), 'no empty or second CSRF meta');
        $this->assertStringContainsString('<script type="module" src="js/main.js"></script>', $html);
        $this->assertStringNotContainsString(self::PUSHER_SECRET, $html);
        $this->assertStringNotContainsString(self::SSE_SECRET, $html);

        // The page's own files, byte for byte, with their types.
        foreach (['js/main.js' => 'text/javascript; charset=utf-8', 'vendor/echo.js' => 'text/javascript; charset=utf-8', 'vendor/uPlot.min.css' => 'text/css; charset=utf-8', 'dashboard.css' => 'text/css; charset=utf-8'] as $file => $want) {
            [$status, $type, $body] = TestApp::request('GET', "$base/scada/dashboard/$file");
            $this->assertSame([200, $want], [$status, $type], $file);
            $this->assertSame(file_get_contents(self::root() . "/$file"), $body, $file);
        }
        // Nothing outside the folder, nothing that is not a page file. The first ones have an allowed extension and
        // exist (php/resources/js/…): only the containment check keeps them out. php/composer.json exists too (and, like
        // them, in the docker test image, which has no README.md at its root).
        $this->assertFileExists(Processes::root() . '/php/resources/js/scada-sse-connector.js');
        $this->assertFileExists(Processes::root() . '/php/composer.json');
        foreach (['../js/scada-sse-connector.js', '..%2Fjs%2Fscada-sse-connector.js', 'js/..%2F..%2Fjs/scada-sse-connector.js', '../../composer.json', '..%2F..%2Fcomposer.json', '%2e%2e/%2e%2e/composer.json', '../../../README.md',
            '../composer.json', '..%2Fcomposer.json', 'js/nope.js', 'vendor', '../src/Http/DashboardController.php', 'js/main.js%00.css', 'js%00/main.js'] as $path) {
            [$status, , $body] = TestApp::request('GET', "$base/scada/dashboard/$path");
            $this->assertSame(404, $status, "$path: $body");
            // Nothing of the files they point at (an APP_DEBUG error page names paths, never contents).
            $this->assertStringNotContainsString('ScadaSseConnector', $body, $path);
            $this->assertStringNotContainsString('# scada-broadcast', $body, $path);
            $this->assertStringNotContainsString('"scada-broadcast/laravel"', $body, $path);
            $this->assertStringNotContainsString('class DashboardController', $body, $path);
        }
    }

    public function test_a_missing_dashboard_folder_is_an_error_not_an_open_door(): void
    {
        $controller = new class () extends \Scada\Broadcasting\Http\DashboardController {
            public static function root(): string
            {
                return '/nonexistent/scada-dashboard';
            }
        };
        $this->expectException(\RuntimeException::class);
        $this->expectExceptionMessage('scada dashboard: its folder /nonexistent/scada-dashboard does not exist');
        $controller->file('../../../etc/hostname.txt');
    }

    public function test_in_pusher_mode_the_page_gets_the_connection_key_and_host_but_not_its_secret(): void
    {
        $base = $this->serve(['SCADA_DASHBOARD_ROUTE' => 'ops/live/', 'SCADA_DASHBOARD_MODE' => 'pusher', 'PUSHER_HOST' => 'ws.plant.example', 'PUSHER_PORT' => '6001', 'PUSHER_SCHEME' => 'http']);
        [$status, , $html, $headers] = TestApp::requestWithHeaders('GET', "$base/ops/live");
        $this->assertSame(200, $status, $html);
        $this->assertStringContainsString('<base href="/ops/live/">', $html);
        $config = self::embedded($html);
        $this->assertSame(['mode' => 'pusher', 'key' => 'dash-key', 'host' => 'ws.plant.example', 'port' => 6001, 'tls' => false, 'cluster' => 'mt1', 'authEndpoint' => '/broadcasting/auth', 'allowedOrigins' => ['ws://ws.plant.example:6001']], array_diff_key($config, array_flip(['channels', 'sseUrl', 'tokenUrl'])));
        $this->assertSame(['plant-live', 'alarms-plant'], $config['channels'], 'the default channels');
        $this->assertStringContainsString("connect-src 'self' ws://ws.plant.example:6001;", $headers['content-security-policy'][0] ?? '');
        $this->assertStringNotContainsString(self::PUSHER_SECRET, $html);
        [$status] = TestApp::request('GET', "$base/ops/live/js/config.js");
        $this->assertSame(200, $status);
    }

    public function test_in_pusher_mode_the_browser_facing_address_overrides_the_servers_own(): void
    {
        // The app reaches the server as 127.0.0.1:6001 over http; browsers through a TLS proxy.
        $base = $this->serve(['SCADA_DASHBOARD_ROUTE' => '/scada/dashboard', 'SCADA_DASHBOARD_MODE' => 'pusher', 'PUSHER_HOST' => '127.0.0.1', 'PUSHER_PORT' => '6001', 'PUSHER_SCHEME' => 'http',
            'SCADA_DASHBOARD_PUSHER_HOST' => 'ws.plant.example', 'SCADA_DASHBOARD_PUSHER_PORT' => '443', 'SCADA_DASHBOARD_PUSHER_SCHEME' => 'https']);
        [$status, , $html, $headers] = TestApp::requestWithHeaders('GET', "$base/scada/dashboard");
        $this->assertSame(200, $status, $html);
        $config = self::embedded($html);
        $this->assertSame(['ws.plant.example', 443, true, ['wss://ws.plant.example:443']], [$config['host'], $config['port'], $config['tls'], $config['allowedOrigins']]);
        $this->assertStringNotContainsString('127.0.0.1', $html);
        $this->assertStringContainsString("connect-src 'self' wss://ws.plant.example:443;", $headers['content-security-policy'][0] ?? '');
    }

    public function test_without_opting_in_there_is_no_dashboard(): void
    {
        $base = $this->serve([]);
        $this->assertSame(404, TestApp::request('GET', "$base/scada/dashboard")[0]);
        $this->assertSame(404, TestApp::request('GET', "$base/scada/dashboard/js/main.js")[0]);
    }

    public function test_vendor_publish_copies_the_dashboard_files_for_a_web_server(): void
    {
        $app = new FreshApp($this->dir);
        $p = new Process([PHP_BINARY, ...Processes::extensionArgs(), 'artisan', 'vendor:publish', '--tag=scada-dashboard'], "$this->dir/publish.log", [], $app->path);
        $this->assertSame(0, $p->wait(60), $p->output());
        $target = "$app->path/public/vendor/scada-broadcast/dashboard";
        $want = [];
        $it = new \RecursiveIteratorIterator(new \RecursiveDirectoryIterator(self::root(), \FilesystemIterator::SKIP_DOTS));
        foreach ($it as $f) {
            $want[] = substr($f->getPathname(), strlen(self::root()) + 1);
        }
        sort($want);
        $this->assertContains('index.html', $want);
        $this->assertContains('vendor/uPlot.iife.min.js', $want);
        foreach ($want as $file) {
            $this->assertFileEquals(self::root() . "/$file", "$target/$file");
        }
    }
}
