<?php

// Laravel 11+ merges this over the framework's config/app.php; providers come from bootstrap/providers.php.
return array_diff_key(require dirname(__DIR__, 2) . '/app/config/app.php', ['providers' => true, 'aliases' => true]);
