<?php
// A small Laravel 8 application for the integration tests, built from
// Debian's php-laravel-framework (no Composer download). The package under
// php/ is registered explicitly, as Composer's package discovery would.
require_once 'Illuminate/autoload.php';

spl_autoload_register(function (string $class): void {
    foreach (['App\\' => __DIR__ . '/../app/', 'Scada\\Broadcasting\\' => dirname(__DIR__, 3) . '/php/src/'] as $prefix => $dir) {
        if (str_starts_with($class, $prefix)) {
            $file = $dir . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
            if (is_file($file)) {
                require $file;
            }
        }
    }
});

// Tests run several apps at once: each gets its own storage directory, and
// Laravel's bootstrap caches live there too (the source tree stays read-only).
$storage = getenv('APP_STORAGE') ?: sys_get_temp_dir() . '/scada-test-app-storage';
foreach (['framework/cache', 'framework/views', 'logs', 'bootstrap-cache'] as $d) {
    @mkdir("$storage/$d", 0775, true);
}
foreach (['APP_SERVICES_CACHE' => 'services.php', 'APP_PACKAGES_CACHE' => 'packages.php', 'APP_CONFIG_CACHE' => 'config.php',
    'APP_ROUTES_CACHE' => 'routes-v7.php', 'APP_EVENTS_CACHE' => 'events.php'] as $name => $file) {
    if (getenv($name) === false) {
        putenv("$name=$storage/bootstrap-cache/$file");
        $_ENV[$name] = $_SERVER[$name] = "$storage/bootstrap-cache/$file";
    }
}
$app = new Illuminate\Foundation\Application(dirname(__DIR__));
$app->useStoragePath($storage);
$app->singleton(Illuminate\Contracts\Http\Kernel::class, App\Http\Kernel::class);
$app->singleton(Illuminate\Contracts\Console\Kernel::class, App\Console\Kernel::class);
$app->singleton(Illuminate\Contracts\Debug\ExceptionHandler::class, App\Exceptions\Handler::class);

return $app;
