<?php

namespace Scada\Broadcasting\Tests\Support;

/**
 * The test Laravel application driven through real processes: artisan
 * commands, queue workers, and `php -S` serving /broadcasting/auth. It is
 * configured by environment variables, as a real app is by .env. Which app
 * follows the installed Laravel's skeleton generation: tests/app (the 8/10
 * layout: Kernels, BroadcastServiceProvider, BROADCAST_DRIVER) or
 * tests/app-11 (Laravel 11+: bootstrap/app.php with withRouting(channels:),
 * BROADCAST_CONNECTION).
 */
final class TestApp
{
    private string $iniDir;

    /** @param array<string,string> $env */
    public function __construct(private string $dir, private array $env)
    {
        $this->env['APP_STORAGE'] = "$dir/laravel-storage";
        // The extension is enabled the way a server enables it: by an ini file
        // (so processes the app spawns itself, e.g. queue:listen's workers, have it too).
        $this->iniDir = "$dir/php-conf.d";
        @mkdir($this->iniDir, 0755, true);
        if (!Processes::extensionFromIni()) {
            file_put_contents("$this->iniDir/scada_broadcast.ini", 'extension=' . Processes::extension() . "\n");
        }
    }

    public static function root(): string
    {
        return Processes::root() . (self::elevenPlus() ? '/tests/app-11' : '/tests/app');
    }

    /** Laravel 11+ (the application-builder skeleton)? */
    public static function elevenPlus(): bool
    {
        return version_compare(self::laravelVersion(), '11.0', '>=');
    }

    public static function laravelVersion(): string
    {
        return \Illuminate\Foundation\Application::VERSION;
    }

    /** The .env name of the default broadcasting connection for this Laravel version. */
    public static function broadcastEnv(): string
    {
        return self::elevenPlus() ? 'BROADCAST_CONNECTION' : 'BROADCAST_DRIVER';
    }

    public function env(array $extra = []): array
    {
        return array_merge($this->env, $extra);
    }

    /** A PHP command line; ini settings on top of the php.ini files. */
    private function php(array $ini = []): array
    {
        $cmd = [PHP_BINARY];
        foreach ($ini as $k => $v) {
            array_push($cmd, '-d', "$k=$v");
        }

        return $cmd;
    }

    /** Runs `php artisan ...` to completion; returns [exit code, output]. */
    public function artisan(array $args, array $env = [], bool $withExtension = true, float $timeout = 60): array
    {
        $p = $this->start($args, $env, $withExtension);
        $code = $p->wait($timeout);

        return [$code, $p->output()];
    }

    /** Starts `php artisan ...` in the background. */
    public function start(array $args, array $env = [], bool $withExtension = true, array $ini = []): Process
    {
        $log = $this->dir . '/artisan-' . preg_replace('/\W+/', '-', implode('-', array_slice($args, 0, 2))) . '-' . bin2hex(random_bytes(3)) . '.log';

        // ":dir" adds our ini directory to the default scan directories.
        $env = $this->env(array_merge($env, $withExtension ? ['PHP_INI_SCAN_DIR' => ':' . $this->iniDir]
            : (Processes::extensionFromIni() ? ['PHP_INI_SCAN_DIR' => $this->iniDirWithoutExtension()] : [])));

        return new Process(array_merge($this->php($ini), [self::root() . '/artisan'], $args), $log, $env, self::root());
    }

    /** Where php.ini enables the extension: the same scanned ini files minus that one. */
    private function iniDirWithoutExtension(): string
    {
        $dir = $this->dir . '/php-conf.d-without-extension';
        @mkdir($dir, 0755, true);
        foreach (array_filter(array_map('trim', explode(',', (string) php_ini_scanned_files()))) as $file) {
            if (!str_contains($file, 'scada_broadcast')) {
                @symlink($file, $dir . '/' . basename($file));
            }
        }

        return $dir;
    }

    /** Serves the app with `php -S`; returns [process, base URL]. */
    public function serve(): array
    {
        $port = Processes::freePort();
        $p = new Process(array_merge($this->php(), ['-S', "127.0.0.1:$port", '-t', self::root() . '/public', self::root() . '/public/index.php']),
            $this->dir . "/http-$port.log", $this->env(['PHP_INI_SCAN_DIR' => ':' . $this->iniDir]), self::root());
        Processes::waitFor(fn () => Processes::tcpOpen($port), 10, 'php -S for the Laravel app');

        return [$p, "http://127.0.0.1:$port"];
    }

    /** POSTs a form; returns [status, body]. */
    public static function post(string $url, array $form, array $headers = []): array
    {
        [$status, , $body] = self::request('POST', $url, $form, $headers);

        return [$status, $body];
    }

    /**
     * An HTTP request with a form body (POST) or query (GET); returns
     * [status, content type, body] exactly as received.
     */
    public static function request(string $method, string $url, array $form = [], array $headers = []): array
    {
        return array_slice(self::requestWithHeaders($method, $url, $form, $headers), 0, 3);
    }

    /** request()'s answer and the response headers: [status, content type, body, lower-case name => list of values]. */
    public static function requestWithHeaders(string $method, string $url, array $form = [], array $headers = []): array
    {
        $h = "Accept: application/json\r\n";
        if ($method === 'POST') {
            $h .= "Content-Type: application/x-www-form-urlencoded\r\n";
        } elseif ($form) {
            $url .= '?' . http_build_query($form);
        }
        foreach ($headers as $k => $v) {
            $h .= "$k: $v\r\n";
        }
        $http = ['method' => $method, 'ignore_errors' => true, 'header' => $h, 'timeout' => 10];
        if ($method === 'POST') {
            $http['content'] = http_build_query($form);
        }
        $body = file_get_contents($url, false, stream_context_create(['http' => $http]));
        preg_match('{HTTP/\S+ (\d+)}', $http_response_header[0] ?? '', $m);
        $type = '';
        $headers = []; // lower-case name => list of values (Set-Cookie comes several times)
        foreach (array_slice($http_response_header ?? [], 1) as $line) {
            [$name, $value] = array_pad(explode(':', $line, 2), 2, '');
            $headers[strtolower(trim($name))][] = trim($value);
            if (stripos($line, 'Content-Type:') === 0) {
                $type = trim(substr($line, 13));
            }
        }

        return [(int) ($m[1] ?? 0), $type, (string) $body, $headers];
    }
}
