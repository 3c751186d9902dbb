<?php

namespace Scada\Broadcasting\Tests\Integration;

use Scada\Broadcasting\Tests\Support\FreshApp;
use Scada\Broadcasting\Tests\Support\IntegrationTestCase;
use Scada\Broadcasting\Tests\Support\Process;
use Scada\Broadcasting\Tests\Support\Processes;
use Scada\Broadcasting\Tests\Support\TestApp;

/**
 * `php artisan scada:install` on a fresh app of this stack's Laravel
 * generation (the 11+ skeleton on Laravel 13, the 8/10 one on 8 and 10),
 * the package found by Laravel's own package discovery: the first run sets
 * the app up and says what it changed, the second changes nothing, and the
 * app then broadcasts through the scada driver and serves /broadcasting/auth.
 */
final class ScadaInstallTest extends IntegrationTestCase
{
    public function test_scada_install_sets_up_a_fresh_app_once_and_a_second_run_changes_nothing(): void
    {
        $this->startStack();
        $app = new FreshApp($this->dir);
        $variable = TestApp::broadcastEnv();
        $this->assertStringNotContainsString('scada', $app->file('.env'));

        [$code, $out] = $this->artisan($app, ['scada:install']);
        $this->assertSame(0, $code, $out);
        $this->assertStringContainsString("changed  .env: $variable=scada (was log)", $out);
        $this->assertStringContainsString("changed  config/broadcasting.php: added the 'scada' connection", $out);
        $this->assertStringContainsString('changed  .env: added SCADA_SIDECAR_SOCKET=/run/scada-broadcast/sidecar.sock', $out);
        $this->assertStringContainsString("$variable=scada\n", $app->file('.env'));
        $this->assertStringContainsString("PUSHER_APP_KEY=\n", $app->file('.env'));
        $this->assertMatchesRegularExpression("/'scada' => \\[\\s*'driver' => 'scada',/", $app->file('config/broadcasting.php'));
        $this->assertStringContainsString("env('$variable'", $app->file('config/broadcasting.php'));
        $this->assertStringContainsString("Broadcast::channel('App.Models.User.{id}'", $app->file('routes/channels.php'));
        if (TestApp::elevenPlus()) {
            // The 11+ skeleton has neither file: Laravel's broadcasting config is published, the channels route added to withRouting().
            $this->assertStringContainsString('changed  config/broadcasting.php: published (the app had none)', $out);
            $this->assertStringContainsString('changed  routes/channels.php: created', $out);
            $this->assertStringContainsString("        commands: __DIR__.'/../routes/console.php',\n        channels: __DIR__.'/../routes/channels.php',\n", $app->file('bootstrap/app.php'));
        } else {
            $this->assertStringContainsString('changed  config/app.php: enabled App\\Providers\\BroadcastServiceProvider', $out);
            $this->assertMatchesRegularExpression('/^\s+App\\\\Providers\\\\BroadcastServiceProvider::class,$/m', $app->file('config/app.php'));
        }
        fwrite(STDERR, "\nINSTALL Laravel " . TestApp::laravelVersion() . ", first run:\n$out");

        $installed = $app->snapshot();
        [$code, $again] = $this->artisan($app, ['scada:install']);
        $this->assertSame(0, $code, $again);
        $this->assertStringContainsString('scada:install: nothing to change', $again);
        $this->assertStringNotContainsString('changed', $again);
        $this->assertSame($installed, $app->snapshot(), 'the second run changed no file');

        $this->assertInstalledAppBroadcasts($app);
    }

    public function test_scada_install_keeps_a_with_broadcasting_bootstrap_and_the_app_serves_broadcasting_auth(): void
    {
        if (! TestApp::elevenPlus()) {
            $this->markTestSkipped('->withBroadcasting() is Laravel 11+; this stack has Laravel ' . TestApp::laravelVersion());
        }
        $this->startStack();
        $app = new FreshApp($this->dir, withBroadcasting: true);
        $bootstrap = $app->file('bootstrap/app.php');
        $this->assertStringContainsString("->withBroadcasting(__DIR__.'/../routes/channels.php', ['middleware' => ['web']])", $bootstrap);

        [$code, $out] = $this->artisan($app, ['scada:install']);
        $this->assertSame(0, $code, $out);
        $this->assertStringContainsString('changed  routes/channels.php: created', $out);
        $this->assertStringNotContainsString('bootstrap/app.php', $out, 'withBroadcasting() already registers the channels');
        $this->assertSame($bootstrap, $app->file('bootstrap/app.php'));
        [$code, $again] = $this->artisan($app, ['scada:install']);
        $this->assertSame(0, $code, $again);
        $this->assertStringContainsString('scada:install: nothing to change', $again);

        $this->assertInstalledAppBroadcasts($app);
    }

    /** The installed app: the default connection is the scada driver, /broadcasting/auth exists, and events arrive. */
    private function assertInstalledAppBroadcasts(FreshApp $app): void
    {
        $sub = $this->subscribe('laravel_database_installed');
        $check = "$this->dir/check-installed.php";
        file_put_contents($check, '<?php
            chdir($argv[1]);
            require "vendor/autoload.php";
            $app = require "bootstrap/app.php";
            $app->make(Illuminate\Contracts\Console\Kernel::class)->bootstrap();
            $broadcaster = Illuminate\Support\Facades\Broadcast::connection();
            // The payload Laravel\'s event pipeline hands every driver (socket included).
            $broadcaster->broadcast(["installed"], "app.installed", ["ok" => true, "socket" => null]);
            $app->make(Scada\Broadcasting\ScadaBroadcastingService::class)->flush(5000);
            echo json_encode(["default" => config("broadcasting.default"), "driver" => get_class($broadcaster),
                "routes" => array_values(array_map(fn ($r) => $r->uri(), $app["router"]->getRoutes()->getRoutes()))]);');
        $p = new Process([PHP_BINARY, ...Processes::extensionArgs(), $check, $app->path], "$check.log", $this->sidecar->env());
        $this->assertSame(0, $p->wait(30), $p->output());
        $result = json_decode(substr($p->output(), (int) strpos($p->output(), '{')), true);
        $this->assertSame('scada', $result['default'], $p->output());
        $this->assertSame('Scada\\Broadcasting\\ScadaBroadcaster', $result['driver']);
        $this->assertContains('broadcasting/auth', $result['routes']);
        [$m] = $sub->waitFor(1, 10);
        $this->assertSame('{"event":"app.installed","data":{"ok":true,"socket":null},"socket":null}', $m['message']);
    }

    public function test_scada_install_fails_and_leaves_env_alone_when_it_cannot_add_the_connection(): void
    {
        $app = new FreshApp($this->dir);
        // A config the command cannot edit safely: the connections come from a variable.
        $config = "<?php\n\n\$connections = ['log' => ['driver' => 'log'], 'null' => ['driver' => 'null']];\n\nreturn [\n    'default' => env('" . TestApp::broadcastEnv() . "', 'null'),\n    'connections' => \$connections,\n];\n";
        file_put_contents("$app->path/config/broadcasting.php", $config);
        $before = $app->snapshot();

        [$code, $out] = $this->artisan($app, ['scada:install']);
        $this->assertNotSame(0, $code, "scada:install must fail: $out");
        $this->assertStringContainsString("could not find a 'connections' => [ array in $app->path/config/broadcasting.php", $out);
        $this->assertStringContainsString('.env was not changed', $out);
        $this->assertStringNotContainsString('changes.', $out, 'no success summary');
        $this->assertSame($before, $app->snapshot(), 'no file changed: .env still selects the log driver, so the app still boots');
    }

    public function test_scada_install_fails_when_a_file_cannot_be_written(): void
    {
        $app = new FreshApp($this->dir);
        // .env is a directory: writing it fails (EISDIR), also for root.
        unlink("$app->path/.env");
        mkdir("$app->path/.env");

        [$code, $out] = $this->artisan($app, ['scada:install']);
        $this->assertNotSame(0, $code, "scada:install must fail: $out");
        $this->assertStringContainsString("could not write $app->path/.env", $out);
        $this->assertStringNotContainsString('changes.', $out, 'no success summary');
    }

    /** `php artisan ...` in the fresh app, the extension loaded as a server would. */
    private function artisan(FreshApp $app, array $args): array
    {
        $p = new Process([PHP_BINARY, ...Processes::extensionArgs(), 'artisan', ...$args], "$this->dir/install-" . bin2hex(random_bytes(3)) . '.log', [], $app->path);

        return [$p->wait(60), $p->output()];
    }
}
