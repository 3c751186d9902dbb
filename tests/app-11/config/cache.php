<?php

return require dirname(__DIR__, 2) . '/app/config/cache.php';
