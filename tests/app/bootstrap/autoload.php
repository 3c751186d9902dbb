<?php
// What Composer's vendor/autoload.php gives a real app, for the test apps
// built from Debian's php-laravel-framework (no Composer download): Laravel,
// the package under php/ and the app's classes. $scadaAppDirs lists the App\
// directories, first match wins (the Laravel 11+ app, tests/app-11, reuses
// this app's events, jobs and commands).
require_once 'Illuminate/autoload.php';

$scadaAppDirs = $scadaAppDirs ?? [dirname(__DIR__) . '/app/'];
spl_autoload_register(function (string $class) use ($scadaAppDirs): void {
    $roots = [
        'App\\' => $scadaAppDirs,
        'Scada\\Broadcasting\\' => [dirname(__DIR__, 3) . '/php/src/'],
        // pusher-php-server is not packaged by Debian: Laravel's own pusher
        // driver (the oracle for /broadcasting/auth) runs on this stand-in.
        'Pusher\\' => [dirname(__DIR__, 2) . '/fixtures/pusher-php-server/'],
    ];
    foreach ($roots as $prefix => $dirs) {
        if (!str_starts_with($class, $prefix)) {
            continue;
        }
        foreach ($dirs as $dir) {
            $file = $dir . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
            if (is_file($file)) {
                require $file;

                return;
            }
        }
    }
});

// Tests run several apps at once: each gets its own storage directory, and
// Laravel's bootstrap caches live there too (the source tree stays read-only).
$scadaStorage = getenv('APP_STORAGE') ?: sys_get_temp_dir() . '/scada-test-app-storage';
foreach (['framework/cache', 'framework/views', 'framework/sessions', 'logs', 'bootstrap-cache'] as $d) {
    @mkdir("$scadaStorage/$d", 0775, true);
}
foreach (['APP_SERVICES_CACHE' => 'services.php', 'APP_PACKAGES_CACHE' => 'packages.php', 'APP_CONFIG_CACHE' => 'config.php',
    'APP_ROUTES_CACHE' => 'routes-v7.php', 'APP_EVENTS_CACHE' => 'events.php'] as $name => $file) {
    if (getenv($name) === false) {
        putenv("$name=$scadaStorage/bootstrap-cache/$file");
        $_ENV[$name] = $_SERVER[$name] = "$scadaStorage/bootstrap-cache/$file";
    }
}
